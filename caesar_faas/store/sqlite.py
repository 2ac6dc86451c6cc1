"""The Store contract on one SQLite file, shared by threads and processes (gateway, runner,
connector, monitor).

WAL lets readers run beside the single writer; busy_timeout makes writers queue instead of
failing; every read-check-write runs inside BEGIN IMMEDIATE, which takes the write lock before
the read, so a compare-and-set is atomic across processes. sqlite3 connections must not be
shared between threads, hence one per thread (and a fresh one after fork).

Each collection is a table: id, owner, created, a few indexed columns the services filter on,
and the whole record as JSON in `doc`. SQL on those columns only narrows the rows read; every
row is re-checked with filters.matches, so the semantics are exactly the reference ones.

Every query shape of the services is served by an index (tests/test_store_plans.py reads
EXPLAIN QUERY PLAN for each): pages seek to the cursor with a row-value bound, batches walk an
index in their own order. The running totals (store.totals) live in a `totals` table, updated
in the same transaction as the record they count.

Point reads (`get`) are answered from memory while no commit has happened since the document
was read (store/wal_version.py: SQLite's WAL-index header, mapped, read without a syscall), so
a client polling a job's status costs no SQLite call until something changes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

from . import cursors, totals
from .base import COLLECTIONS, DuplicateId, Filter, Page, Record, Store
from .changes import changed as record_changed
from .filters import check_field, is_number, lookup, matches, validate
from .records import check_changes, check_record
from .wal_version import WalVersion, wal_version

BUSY_TIMEOUT_MS = 30_000
RECENT_READS = 4096  # documents kept for point reads (dropped all at once beyond that)
BASE_COLUMNS = ("id", "owner", "created")
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "files": ("status", "expires", "tag", "announced"),
    "jobs": ("state", "active", "app", "tag", "expires"),
    "users": (),
    "stats": (),
}
# Beside (owner, created, id) and (created, id) on every table. Each serves query shapes of the
# services: filtered pages newest first (owner or not), batches in their own order (expiry by
# `expires`, the outboxes and queues by `created`), the active jobs.
INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "files": (("owner", "status", "created", "id"), ("owner", "tag", "created", "id"), ("tag", "created", "id"), ("status", "created", "id"),
              ("status", "announced", "created", "id"), ("status", "expires", "id"), ("expires", "id")),
    "jobs": (("state", "created", "id"), ("active", "state"), ("owner", "state", "created", "id"),
             ("owner", "app", "created", "id"), ("owner", "tag", "created", "id"), ("app", "created", "id"),
             ("tag", "created", "id"), ("active", "expires", "id")),
    "users": (),
    "stats": (),
}
# Indexes of earlier versions, superseded by the ones above.
RETIRED_INDEXES = ("files_owner_status", "files_status", "files_expires", "jobs_state_active", "jobs_owner_state",
                   "jobs_app", "jobs_tag", "jobs_expires", "jobs_expires_id")
_SQL_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_SCALAR_TYPES = (str, int, float, bool)


def _columns(collection: str) -> tuple[str, ...]:
    if collection not in COLLECTIONS:
        raise ValueError(f"unknown collection {collection!r}")
    return BASE_COLUMNS + EXTRA_COLUMNS[collection]


def _column_value(record: Record, column: str) -> Any:
    """What the column holds: scalars as they are, NULL for missing or nested values (those rows
    are still found through the Python re-check wherever a condition could match them)."""
    value = record.get(column)
    return value if isinstance(value, _SCALAR_TYPES) else None


def _pushdown(collection: str, where: Filter | None, *, index_sets: bool = True) -> tuple[list[str], list[Any]]:
    """SQL clauses that keep at least every row `matches` accepts (a superset, never fewer).
    index_sets=False keeps membership tests ('in', 'nin') out of index choice (a unary +), so
    a page walks an index in (created, id) order instead of sorting every member of the set."""
    clauses: list[str] = []
    params: list[Any] = []
    columns = _columns(collection)
    for field, cond in (where or {}).items():
        if field not in columns:
            continue
        col = f'"{field}"'
        if not index_sets and isinstance(cond, dict) and set(cond) & {"in", "nin"}:
            col = f"+{col}"
        conds = cond.items() if isinstance(cond, dict) else [("eq", cond)]
        for op, arg in conds:
            if op == "eq":
                if arg is None:
                    clauses.append(f"{col} IS NULL")
                else:
                    clauses.append(f"{col} = ?")
                    params.append(arg)
            elif op == "in":
                known = [v for v in arg if v is not None]
                parts = [f"{col} IN ({','.join('?' * len(known))})"] if known else []
                if None in arg:
                    parts.append(f"{col} IS NULL")
                clauses.append("(" + " OR ".join(parts) + ")" if parts else "0")
                params.extend(known)
            elif op == "nin":
                # Only for strings: SQL would also drop an int 1 for nin [True] (0/1 storage).
                if arg and all(isinstance(v, str) for v in arg):
                    clauses.append(f"({col} IS NULL OR {col} NOT IN ({','.join('?' * len(arg))}))")
                    params.extend(arg)
            else:
                clauses.append(f"{col} {_SQL_OPS[op]} ?")
                params.append(arg)
    return clauses, params


def _where_sql(clauses: list[str]) -> str:
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def _sort_key(value: Any) -> tuple[int, Any]:
    """Order values of mixed types roughly like MongoDB: null, numbers, strings, nested, bools."""
    if value is None:
        return (0, 0)
    if is_number(value):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, bool):
        return (5, value)
    return (3, json.dumps(value, sort_keys=True))


class SQLiteStore(Store):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._schema_pid: int | None = None
        self._wal: WalVersion | None = None
        self._wal_unavailable = False
        self._recent: dict[tuple[str, str], tuple[bytes, str]] = {}  # (collection, id) -> (version, doc)

    # -- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves; check_same_thread=False only so that
        # close() may close every thread's connection; each is still used by one thread.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._lock:
            self._connections.append(conn)
            if self._schema_pid != os.getpid():
                self._create_schema(conn)
                self._schema_pid = os.getpid()
        self._local.conn, self._local.pid = conn, os.getpid()
        if not self._wal_unavailable and (self._wal is None or self._wal.pid != os.getpid()):
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()  # a read: now it holds the -shm file
            self._map_wal()
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        with self._transaction(conn):
            for name in COLLECTIONS:
                extras = "".join(f', "{c}"' for c in EXTRA_COLUMNS[name])
                conn.execute(f'CREATE TABLE IF NOT EXISTS "{name}" (id TEXT PRIMARY KEY, owner, '
                             f"created REAL{extras}, doc TEXT NOT NULL)")
                self._add_missing_columns(conn, name)
                conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}_owner_created" '
                             f'ON "{name}" (owner, created DESC, id DESC)')
                conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}_created" '
                             f'ON "{name}" (created DESC, id DESC)')
                for cols in INDEXES[name]:
                    conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}_{"_".join(cols)}" '
                                 f'ON "{name}" ({", ".join(cols)})')
            for index in RETIRED_INDEXES:
                conn.execute(f'DROP INDEX IF EXISTS "{index}"')
            conn.execute("CREATE TABLE IF NOT EXISTS totals (id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                         "doc TEXT NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS totals_kind ON totals (kind, id)")
            meta = conn.execute("SELECT doc FROM totals WHERE id = ?", (totals.META_ID,)).fetchone()
            if meta is None or json.loads(meta[0]).get("format") != totals.FORMAT:
                self._rebuild_totals(conn)  # a store from before running totals (or this layout): count it once

    @staticmethod
    def _add_missing_columns(conn: sqlite3.Connection, name: str) -> None:
        """Columns added by later versions, filled from the stored documents."""
        present = {row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')}
        for column in EXTRA_COLUMNS[name]:
            if column not in present:
                conn.execute(f'ALTER TABLE "{name}" ADD COLUMN "{column}"')
                # Scalars only, as _column_value stores them (json_extract gives 1/0 for booleans).
                conn.execute(f'UPDATE "{name}" SET "{column}" = json_extract(doc, ?) '
                             f"WHERE json_type(doc, ?) IN ('text', 'integer', 'real', 'true', 'false')",
                             (f'$."{column}"', f'$."{column}"'))

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock before reading, so read-check-write is atomic."""
        conn = conn or self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _table(collection: str) -> str:
        if collection not in COLLECTIONS:
            raise ValueError(f"unknown collection {collection!r}")
        return f'"{collection}"'

    def _write_row(self, conn: sqlite3.Connection, collection: str, record: Record,
                   verb: str = "INSERT") -> None:
        cols = ", ".join(f'"{c}"' for c in _columns(collection) + ("doc",))
        values = [_column_value(record, c) for c in _columns(collection)] + [json.dumps(record)]
        conn.execute(f"{verb} INTO {self._table(collection)} ({cols}) "
                     f"VALUES ({','.join('?' * len(values))})", values)

    def _rewrite_row(self, conn: sqlite3.Connection, collection: str, record: Record) -> None:
        """UPDATE in place (only the indexes of changed columns are touched, unlike REPLACE)."""
        columns = _columns(collection)
        sets = ", ".join(f'"{c}" = ?' for c in columns[1:] + ("doc",))
        values = [_column_value(record, c) for c in columns[1:]] + [json.dumps(record), record["id"]]
        conn.execute(f"UPDATE {self._table(collection)} SET {sets} WHERE id = ?", values)

    def _load(self, conn: sqlite3.Connection, collection: str, record_id: str) -> Record | None:
        doc = self._doc(conn, collection, record_id)
        return json.loads(doc) if doc is not None else None

    def _doc(self, conn: sqlite3.Connection, collection: str, record_id: str) -> str | None:
        """The stored JSON text of one record."""
        row = conn.execute(f"SELECT doc FROM {self._table(collection)} WHERE id = ?",
                           (record_id,)).fetchone()
        return row[0] if row else None

    def _scan(self, collection: str, where: Filter | None, *, extra: list[str] | None = None,
              extra_params: list[Any] | None = None, order_sql: str = "",
              index_sets: bool = True) -> Generator[Record, None, None]:
        """Matching records, in SQL order, read lazily so callers may stop early."""
        validate(where)
        table = self._table(collection)
        clauses, params = _pushdown(collection, where, index_sets=index_sets)
        clauses += extra or []
        params += extra_params or []
        rows = self._conn().execute(f"SELECT doc FROM {table}{_where_sql(clauses)}{order_sql}", params)
        try:
            for (doc,) in rows:
                record = json.loads(doc)
                if matches(record, where):
                    yield record
        finally:
            rows.close()  # an unfinished SELECT would pin the WAL snapshot of this connection

    # -- the contract --------------------------------------------------------------------------

    def insert(self, collection: str, record: Record) -> None:
        check_record(record, full=True)
        try:
            if not totals.counted(collection):
                self._write_row(self._conn(), collection, record)
                return
            with self._transaction() as conn:
                self._write_row(conn, collection, record)
                self._count(conn, totals.change(collection, None, record))
        except sqlite3.IntegrityError as exc:  # the only constraint is the primary key
            raise DuplicateId(record["id"]) from exc

    def insert_many(self, collection: str, records: list[Record]) -> None:
        """Bulk insert in one transaction, totals included (seeding benches, imports)."""
        for record in records:
            check_record(record, full=True)
        try:
            with self._transaction() as conn:
                delta = totals.Delta()
                for record in records:
                    self._write_row(conn, collection, record)
                    delta.add(collection, record, +1)
                self._count(conn, delta)
        except sqlite3.IntegrityError as exc:
            raise DuplicateId("one of the records' ids exists") from exc

    def get(self, collection: str, record_id: str) -> Record | None:
        key = (collection, record_id)
        version = self._committed()  # taken before the read: a commit after it changes it
        if version is not None:
            hit = self._recent.get(key)
            if hit is not None and hit[0] == version:
                return json.loads(hit[1])  # a new dict each time: callers may change theirs
        doc = self._doc(self._conn(), collection, record_id)
        if doc is None:
            return None
        if version is not None:
            if len(self._recent) >= RECENT_READS:
                self._recent = {}
            self._recent[key] = (version, doc)
        return json.loads(doc)

    def _committed(self) -> bytes | None:
        wal = self._wal
        if wal is None or wal.pid != os.getpid():
            return None
        return wal.current()

    def _map_wal(self) -> None:
        with self._lock:
            if self._connections and (self._wal is None or self._wal.pid != os.getpid()):
                self._wal = wal_version(self.path)  # None: every read goes to SQLite
                self._wal_unavailable = self._wal is None

    def update(self, collection: str, record_id: str, changes: dict[str, Any], *,
               expect: Filter | None = None, unset: list[str] | None = None) -> Record | None:
        check_changes(changes, unset)
        validate(expect)
        with self._transaction() as conn:
            record = self._load(conn, collection, record_id)
            if record is None or not matches(record, expect):
                return None
            before = dict(record)
            record.update(changes)
            for field in unset or []:
                record.pop(field, None)
            self._rewrite_row(conn, collection, record)
            self._count(conn, totals.change(collection, before, record))
        record_changed(collection, record_id)  # committed: a waiter reading now sees it
        return record

    def upsert(self, collection: str, record: Record) -> None:
        check_record(record, full=False)
        if not totals.counted(collection):
            self._write_row(self._conn(), collection, record, "REPLACE")
            return
        with self._transaction() as conn:
            before = self._load(conn, collection, record["id"])
            self._write_row(conn, collection, record, "REPLACE")
            self._count(conn, totals.change(collection, before, record))

    def delete(self, collection: str, record_id: str, *, expect: Filter | None = None) -> bool:
        validate(expect)
        with self._transaction() as conn:
            record = self._load(conn, collection, record_id)
            if record is None or not matches(record, expect):
                return False
            conn.execute(f"DELETE FROM {self._table(collection)} WHERE id = ?", (record_id,))
            self._count(conn, totals.change(collection, record, None))
            return True

    def find(self, collection: str, where: Filter | None = None, *, limit: int | None = None,
             order: str = "created") -> list[Record]:
        check_field(order)
        if order in _columns(collection):
            # Without a limit every match is read anyway: a unary + keeps the order out of index
            # choice, so the index that narrows the WHERE best is used (then a sort of the
            # matches); with a limit, an index walked in order stops after `limit` rows.
            plus = "+" if limit is None else ""
            order_sql = f' ORDER BY {plus}"{order}", {plus}id' if order != "id" else " ORDER BY id"
            with closing(self._scan(collection, where, order_sql=order_sql)) as found:
                return list(found) if limit is None else list(islice(found, max(limit, 0)))
        records = sorted(self._scan(collection, where),
                         key=lambda r: (_sort_key(lookup(r, order, None)), r["id"]))
        return records if limit is None else records[:limit]

    def count(self, collection: str, where: Filter | None = None) -> int:
        return sum(1 for _ in self._scan(collection, where))

    def page(self, collection: str, where: Filter | None, *, limit: int,
             cursor: str | None = None) -> Page:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        extra: list[str] = ["created IS NOT NULL"]
        params: list[Any] = []
        if cursor is not None:
            created, last_id = cursors.decode(cursor)
            # A row value: the index seeks straight to the cursor, whatever its depth.
            extra.append("(created, id) < (?, ?)")
            params += [created, last_id]
        with closing(self._scan(collection, where, extra=extra, extra_params=params, index_sets=False,
                                order_sql=" ORDER BY created DESC, id DESC")) as found:
            items, more = self._take(found, limit)
        last = items[-1] if items else None
        return Page(items, cursors.encode(last["created"], last["id"]) if more and last else None)

    @staticmethod
    def _take(found: Iterator[Record], limit: int) -> tuple[list[Record], bool]:
        """Up to `limit` positioned records, and whether one more exists."""
        items: list[Record] = []
        for record in found:
            if not is_number(record.get("created")):
                continue  # only records with a numeric created have a position
            if len(items) == limit:
                return items, True
            items.append(record)
        return items, False

    def sum(self, collection: str, field: str, where: Filter | None = None) -> float:
        check_field(field)
        values = (lookup(r, field) for r in self._scan(collection, where))
        return float(sum(v for v in values if is_number(v)))

    # -- running totals ------------------------------------------------------------------------

    @staticmethod
    def _count(conn: sqlite3.Connection, delta: totals.Delta) -> None:
        """Apply a write's delta to the totals (inside the write's transaction)."""
        for agg, counts, latest in delta.items():
            row = conn.execute("SELECT doc FROM totals WHERE id = ?", (agg,)).fetchone()
            doc = totals.apply(json.loads(row[0]) if row else totals.new_aggregate(agg), counts, latest)
            conn.execute("REPLACE INTO totals (id, kind, doc) VALUES (?, ?, ?)", (agg, doc["kind"], json.dumps(doc)))

    def totals(self, kind: str, name: str | None = None) -> list[Record]:
        if kind not in totals.KINDS:
            raise ValueError(f"unknown totals kind {kind!r}")
        if name is not None:
            rows = self._conn().execute("SELECT doc FROM totals WHERE id = ?", (totals.aggregate_id(kind, name),))
        else:
            rows = self._conn().execute("SELECT doc FROM totals WHERE kind = ? ORDER BY kind, id", (kind,))
        docs = [json.loads(doc) for (doc,) in rows]
        return [doc for doc in docs if doc["counts"]]

    def rebuild_totals(self) -> int:
        with self._transaction() as conn:
            return self._rebuild_totals(conn)

    def _rebuild_totals(self, conn: sqlite3.Connection) -> int:
        """Inside the caller's write transaction: nobody writes records meanwhile."""
        previous = {agg: json.loads(doc) for agg, doc in conn.execute("SELECT id, doc FROM totals")}
        builder = totals.Builder()
        for collection in ("files", "jobs"):
            rows = conn.execute(f"SELECT doc FROM {self._table(collection)}")
            for (doc,) in rows:  # streamed: memory is the aggregates, not the records
                builder.add(collection, json.loads(doc))
        docs = builder.result(previous)
        conn.execute("DELETE FROM totals")
        conn.executemany("INSERT INTO totals (id, kind, doc) VALUES (?, ?, ?)",
                         [(doc["id"], doc["kind"], json.dumps(doc)) for doc in docs])
        conn.execute("INSERT INTO totals (id, kind, doc) VALUES (?, 'meta', ?)",
                     (totals.META_ID, json.dumps({"id": totals.META_ID, "built": True, "format": totals.FORMAT})))
        return len(docs)

    def ping(self) -> None:
        self._conn().execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            self._wal = None  # before the connections close: once they have, the file may go
            self._wal_unavailable = False
            self._recent = {}
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            self._schema_pid = None
        self._local = threading.local()
