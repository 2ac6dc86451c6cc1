"""The Store contract on MongoDB (pymongo; tests also run it on mongomock).

The record id is the document `_id` (one unique index for free, DuplicateKeyError on a repeated
insert); `_id` never leaves this module. A compare-and-set is one find_one_and_update whose
filter is the id plus the expected conditions, which MongoDB applies atomically.

Running totals (store.totals) live in the `totals` collection. The writer that won a
compare-and-set gets the document as it was, computes the delta and applies it with one $inc /
$max upsert per aggregate, so each transition is counted once. The two writes are not one
transaction (a standalone server has none): a process dying between them leaves the totals one
write short until `rebuild_totals` (make rebuild-accounting) recounts them.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from . import cursors, totals
from .base import COLLECTIONS, DuplicateId, Filter, Page, Record, Store
from .changes import changed as record_changed
from .filters import check_field, to_mongo, validate
from .records import check_changes, check_record

# Every index a query of the services needs; created in ensure_indexes (idempotent).
INDEXES: dict[str, list[list[tuple[str, int]]]] = {
    "files": [
        [("owner", ASCENDING), ("created", DESCENDING), ("_id", DESCENDING)],
        [("created", DESCENDING), ("_id", DESCENDING)],
        [("owner", ASCENDING), ("status", ASCENDING), ("created", DESCENDING), ("_id", DESCENDING)],
        [("owner", ASCENDING), ("tag", ASCENDING), ("created", DESCENDING), ("_id", DESCENDING)],
        [("status", ASCENDING), ("created", ASCENDING), ("_id", ASCENDING)],
        [("status", ASCENDING), ("announced", ASCENDING), ("created", ASCENDING), ("_id", ASCENDING)],
        [("status", ASCENDING), ("expires", ASCENDING), ("_id", ASCENDING)],
        [("expires", ASCENDING), ("_id", ASCENDING)],
    ],
    "jobs": [
        [("owner", ASCENDING), ("created", DESCENDING), ("_id", DESCENDING)],
        [("created", DESCENDING), ("_id", DESCENDING)],
        [("state", ASCENDING), ("created", ASCENDING), ("_id", ASCENDING)],
        [("active", ASCENDING), ("state", ASCENDING)],
        [("owner", ASCENDING), ("state", ASCENDING), ("created", DESCENDING), ("_id", DESCENDING)],
        [("owner", ASCENDING), ("app", ASCENDING), ("created", DESCENDING), ("_id", DESCENDING)],
        [("owner", ASCENDING), ("tag", ASCENDING), ("created", DESCENDING), ("_id", DESCENDING)],
        [("active", ASCENDING), ("expires", ASCENDING), ("_id", ASCENDING)],
    ],
    "totals": [
        [("kind", ASCENDING), ("_id", ASCENDING)],
    ],
}


def _to_record(doc: dict[str, Any] | None) -> Record | None:
    return None if doc is None else _record(doc)


def _record(doc: dict[str, Any]) -> Record:
    record_id = doc.pop("_id")
    return {"id": record_id, **doc}


def _to_doc(record: Record) -> dict[str, Any]:
    doc = {k: v for k, v in record.items() if k != "id"}
    doc["_id"] = record["id"]
    return doc


def _field(name: str) -> str:
    return "_id" if name == "id" else name


def _and(*queries: dict[str, Any]) -> dict[str, Any]:
    """Combine queries without one's keys overwriting another's."""
    parts = [q for q in queries if q]
    return {} if not parts else parts[0] if len(parts) == 1 else {"$and": parts}


class MongoStore(Store):
    def __init__(self, client: Any, db_name: str = "caesar") -> None:
        self.client = client
        self.db = client[db_name]

    def _coll(self, collection: str) -> Any:
        if collection not in COLLECTIONS:
            raise ValueError(f"unknown collection {collection!r}")
        return self.db[collection]

    def ensure_indexes(self) -> None:
        """Create the indexes the queries need, and count a store from before running totals
        once; repeating it is a no-op."""
        for collection, indexes in INDEXES.items():
            for keys in indexes:
                self.db[collection].create_index(keys)
        meta = self.db.totals.find_one({"_id": totals.META_ID})
        if meta is None or meta.get("format") != totals.FORMAT:
            self.rebuild_totals()  # a store from before running totals (or this layout): count it once

    def _count(self, delta: totals.Delta) -> None:
        for agg, counts, latest in delta.items():
            kind, _, name = agg.partition(":")
            ops: dict[str, Any] = {}
            inc = {}
            for key, value in counts.items():
                index = totals.run_bucket(key)
                inc[f"{totals.RUNS}.{index}" if index is not None else f"counts.{key}"] = value
            if inc:
                ops["$inc"] = inc
            if latest is not None:
                ops["$max"] = {"latest": latest}
            created = {"kind": kind, "name": name}
            if kind != totals.APP:
                self.db.totals.update_one({"_id": agg}, {**ops, "$setOnInsert": created}, upsert=True)
            elif not any(totals.run_bucket(key) is not None for key in counts):
                # The histogram comes with the aggregate; this write does not touch it.
                self.db.totals.update_one({"_id": agg}, {**ops, "$setOnInsert": {**created, totals.RUNS: totals.empty_runs()}},
                                          upsert=True)
            else:
                self._count_runs(agg, created, ops)

    def _count_runs(self, agg: str, created: dict[str, Any], ops: dict[str, Any]) -> None:
        """$inc of runs.<b> needs the array in place (on a missing field MongoDB would make an
        object of it): an app aggregate is nearly always there already (its jobs were counted
        when submitted); otherwise it is created with its array first, then incremented."""
        has_runs = {"_id": agg, totals.RUNS: {"$type": "array"}}
        if self.db.totals.update_one(has_runs, ops).matched_count:
            return
        try:  # no aggregate, or one without the array: give it one (a concurrent writer may win)
            self.db.totals.update_one({"_id": agg, totals.RUNS: {"$exists": False}},
                                      {"$set": {**created, totals.RUNS: totals.empty_runs()}}, upsert=True)
        except DuplicateKeyError:
            pass
        self.db.totals.update_one(has_runs, ops)

    def insert(self, collection: str, record: Record) -> None:
        check_record(record, full=True)
        try:
            self._coll(collection).insert_one(_to_doc(record))
        except DuplicateKeyError as exc:
            raise DuplicateId(record["id"]) from exc
        self._count(totals.change(collection, None, record))

    def insert_many(self, collection: str, records: list[Record]) -> None:
        """Bulk insert (seeding benches, imports), totals included."""
        for record in records:
            check_record(record, full=True)
        try:
            self._coll(collection).insert_many([_to_doc(r) for r in records], ordered=True)
        except Exception as exc:  # BulkWriteError: a duplicate id (mongomock raises its own class)
            raise DuplicateId("one of the records' ids exists") from exc
        delta = totals.Delta()
        for record in records:
            delta.add(collection, record, +1)
        self._count(delta)

    def get(self, collection: str, record_id: str) -> Record | None:
        return _to_record(self._coll(collection).find_one({"_id": record_id}))

    def update(self, collection: str, record_id: str, changes: dict[str, Any], *,
               expect: Filter | None = None, unset: list[str] | None = None) -> Record | None:
        check_changes(changes, unset)
        query = _and({"_id": record_id}, to_mongo(expect))
        ops: dict[str, Any] = {}
        if changes:
            ops["$set"] = dict(changes)
        if unset:
            ops["$unset"] = {f: "" for f in unset}
        coll = self._coll(collection)
        if not ops:  # MongoDB refuses an empty update; the answer is then just the check
            return _to_record(coll.find_one(query))
        if not totals.counted(collection):
            updated = _to_record(coll.find_one_and_update(query, ops, return_document=ReturnDocument.AFTER))
            if updated is not None:
                record_changed(collection, record_id)
            return updated
        # The document as it was, to count the change; the after is what $set/$unset of
        # top-level fields (check_changes) make of it.
        before = _to_record(coll.find_one_and_update(query, ops, return_document=ReturnDocument.BEFORE))
        if before is None:
            return None
        after = {**before, **changes}
        for field in unset or []:
            after.pop(field, None)
        self._count(totals.change(collection, before, after))
        record_changed(collection, record_id)
        return after

    def upsert(self, collection: str, record: Record) -> None:
        check_record(record, full=False)
        coll = self._coll(collection)
        if not totals.counted(collection):
            coll.replace_one({"_id": record["id"]}, _to_doc(record), upsert=True)
            return
        before = coll.find_one_and_replace({"_id": record["id"]}, _to_doc(record), upsert=True,
                                           return_document=ReturnDocument.BEFORE)
        self._count(totals.change(collection, _to_record(before), record))

    def delete(self, collection: str, record_id: str, *, expect: Filter | None = None) -> bool:
        query = _and({"_id": record_id}, to_mongo(expect))
        if not totals.counted(collection):
            return self._coll(collection).delete_one(query).deleted_count == 1
        gone = _to_record(self._coll(collection).find_one_and_delete(query))
        if gone is None:
            return False
        self._count(totals.change(collection, gone, None))
        return True

    def find(self, collection: str, where: Filter | None = None, *, limit: int | None = None,
             order: str = "created") -> list[Record]:
        check_field(order)
        sort = [(_field(order), ASCENDING)] + ([("_id", ASCENDING)] if order != "id" else [])
        cursor = self._coll(collection).find(to_mongo(where)).sort(sort)
        if limit is not None:
            if limit < 1:
                return []
            cursor = cursor.limit(limit)
        return [_record(doc) for doc in cursor]

    def count(self, collection: str, where: Filter | None = None) -> int:
        return self._coll(collection).count_documents(to_mongo(where))

    def page(self, collection: str, where: Filter | None, *, limit: int,
             cursor: str | None = None) -> Page:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        position: dict[str, Any] = {"created": {"$type": "number"}}
        if cursor is not None:
            created, last_id = cursors.decode(cursor)
            # The $lte on created bounds the index scan at the cursor; the $or settles ties.
            position = {"created": {"$lte": created},
                        "$or": [{"created": {"$lt": created}}, {"_id": {"$lt": last_id}}]}
        docs = list(self._coll(collection).find(_and(to_mongo(where), position))
                    .sort([("created", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1))
        items = [_record(doc) for doc in docs[:limit]]
        more = len(docs) > limit
        return Page(items, cursors.encode(items[-1]["created"], items[-1]["id"]) if more else None)

    def sum(self, collection: str, field: str, where: Filter | None = None) -> float:
        check_field(field)
        validate(where)
        rows = list(self._coll(collection).aggregate([
            {"$match": to_mongo(where)},
            {"$group": {"_id": None, "total": {"$sum": f"${_field(field)}"}}},
        ]))
        return float(rows[0]["total"]) if rows else 0.0

    def totals(self, kind: str, name: str | None = None) -> list[Record]:
        if kind not in totals.KINDS:
            raise ValueError(f"unknown totals kind {kind!r}")
        query = {"_id": totals.aggregate_id(kind, name)} if name is not None else {"kind": kind}
        docs = self.db.totals.find(query).sort([("kind", ASCENDING), ("_id", ASCENDING)])
        found = []
        for doc in docs:
            counts = {k: v for k, v in (doc.get("counts") or {}).items() if v}
            if counts:
                found.append({"id": doc["_id"], "kind": doc["kind"], "name": doc["name"], "counts": counts,
                              "latest": doc.get("latest")})
                if totals.RUNS in doc:
                    found[-1][totals.RUNS] = doc[totals.RUNS]
        return found

    def rebuild_totals(self) -> int:
        """Not atomic with concurrent writes (no multi-document transaction on a standalone
        server): run it when the service is quiet, e.g. during an upgrade."""
        previous = {doc["_id"]: {"latest": doc.get("latest")} for doc in self.db.totals.find({}, {"latest": 1})}
        builder = totals.Builder()
        for collection in ("files", "jobs"):
            for doc in self.db[collection].find({}, batch_size=1000):  # streamed
                builder.add(collection, _to_record(doc) or {})
        docs = builder.result(previous)
        for doc in docs:
            self.db.totals.replace_one({"_id": doc["id"]}, {k: v for k, v in doc.items() if k != "id"}, upsert=True)
        keep = [doc["id"] for doc in docs] + [totals.META_ID]
        self.db.totals.delete_many({"_id": {"$nin": keep}})
        self.db.totals.replace_one({"_id": totals.META_ID}, {"kind": "meta", "built": True, "format": totals.FORMAT},
                                   upsert=True)
        return len(docs)

    def ping(self) -> None:
        self.client.admin.command("ping")

    def close(self) -> None:
        self.client.close()
