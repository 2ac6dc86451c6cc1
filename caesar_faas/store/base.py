"""The metadata store contract shared by the SQLite and MongoDB backends.

Records are plain JSON-able dicts. Every record has `id` (str), `owner` (str) and `created`
(float, epoch seconds). Collections:

files:  id, owner, created, status ("pending" | "ready" | "invalid"), filename_orig, format,
        size (bytes), sha256, shape, tag, key (storage key), etag, reason, expires, ...
jobs:   id, owner, created, state (PENDING|STARTED|RUNNING|SUCCESS|FAILURE|TIMED-OUT|ABORTED),
        app, tag, active (bool: the backend may still hold resources for it), progress (0-100),
        ... (see caesar_faas.jobs)
users:  id (= owner), limits {...} (per-user quota overrides), ...
stats:  id ("accounting"), ... (snapshots written by monitor)

Every state change goes through `update(..., expect=...)`: a compare-and-set that applies the
changes only when the stored record matches every condition in `expect`, atomically, also
between processes. Condition language (field -> condition):
    value                 equal (None matches a missing field or null)
    {"in": [values]}      one of
    {"nin": [values]}     none of
    {"lt": n} / {"lte": n} / {"gt": n} / {"gte": n}   numeric comparison (missing never matches)
Filters in `find`/`count`/`page` use the same language.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

COLLECTIONS = ("files", "jobs", "users", "stats")

Record = dict[str, Any]
Filter = dict[str, Any]


class DuplicateId(Exception):
    """insert() of an id that already exists."""


@dataclass(frozen=True)
class Page:
    items: list[Record]
    next_cursor: str | None  # opaque; None when this is the last page


class Store(ABC):
    """One database holding the collections above."""

    @abstractmethod
    def insert(self, collection: str, record: Record) -> None:
        """Raises DuplicateId when record['id'] exists."""

    @abstractmethod
    def get(self, collection: str, record_id: str) -> Record | None: ...

    @abstractmethod
    def update(self, collection: str, record_id: str, changes: dict[str, Any], *,
               expect: Filter | None = None, unset: list[str] | None = None) -> Record | None:
        """Compare-and-set. Returns the record after the change, or None when the record is
        missing or does not match `expect` (then nothing changed)."""

    @abstractmethod
    def upsert(self, collection: str, record: Record) -> None:
        """Insert or replace the whole record (users, stats)."""

    @abstractmethod
    def delete(self, collection: str, record_id: str, *, expect: Filter | None = None) -> bool:
        """True when a record was deleted (and matched `expect`)."""

    @abstractmethod
    def find(self, collection: str, where: Filter | None = None, *, limit: int | None = None,
             order: str = "created") -> list[Record]:
        """Records matching `where`, ascending by `order` then id."""

    @abstractmethod
    def count(self, collection: str, where: Filter | None = None) -> int: ...

    @abstractmethod
    def page(self, collection: str, where: Filter | None, *, limit: int,
             cursor: str | None = None) -> Page:
        """Newest first (created desc, id desc), `limit` items after `cursor`.
        Raises ValueError for a cursor this store did not issue."""

    @abstractmethod
    def sum(self, collection: str, field: str, where: Filter | None = None) -> float:
        """Sum of a numeric field over matching records (missing counts as 0)."""

    @abstractmethod
    def totals(self, kind: str, name: str | None = None) -> list[Record]:
        """The running totals of `kind` ("user" | "app" | "site"; every one, or only `name`'s), kept by
        the store with every write of a job or file record (store.totals): {id, kind, name,
        counts {key: int}, latest}. Costs O(aggregates returned), never O(records)."""

    @abstractmethod
    def rebuild_totals(self) -> int:
        """Recompute every running total from the records (migration, repair), streaming them
        in memory O(users + apps); returns the number of aggregates."""

    @abstractmethod
    def ping(self) -> None:
        """Raise when the database cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
