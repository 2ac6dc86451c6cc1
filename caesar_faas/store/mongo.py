"""The Store contract on MongoDB (pymongo; tests also run it on mongomock).

The record id is the document `_id` (one unique index for free, DuplicateKeyError on a repeated
insert); `_id` never leaves this module. A compare-and-set is one find_one_and_update whose
filter is the id plus the expected conditions, which MongoDB applies atomically.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from . import cursors
from .base import COLLECTIONS, DuplicateId, Filter, Page, Record, Store
from .filters import check_field, to_mongo, validate
from .records import check_changes, check_record

# Every index a query of the services needs; created in ensure_indexes (idempotent).
INDEXES: dict[str, list[list[tuple[str, int]]]] = {
    "files": [
        [("owner", ASCENDING), ("created", DESCENDING), ("_id", DESCENDING)],
        [("created", DESCENDING), ("_id", DESCENDING)],
        [("owner", ASCENDING), ("status", ASCENDING)],
        [("status", ASCENDING)],
        [("expires", ASCENDING)],
    ],
    "jobs": [
        [("owner", ASCENDING), ("created", DESCENDING), ("_id", DESCENDING)],
        [("created", DESCENDING), ("_id", DESCENDING)],
        [("state", ASCENDING), ("active", ASCENDING)],
        [("owner", ASCENDING), ("state", ASCENDING)],
        [("expires", ASCENDING)],
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
        """Create the indexes the queries need; repeating it is a no-op."""
        for collection, indexes in INDEXES.items():
            for keys in indexes:
                self._coll(collection).create_index(keys)

    def insert(self, collection: str, record: Record) -> None:
        check_record(record, full=True)
        try:
            self._coll(collection).insert_one(_to_doc(record))
        except DuplicateKeyError as exc:
            raise DuplicateId(record["id"]) from exc

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
        return _to_record(coll.find_one_and_update(query, ops, return_document=ReturnDocument.AFTER))

    def upsert(self, collection: str, record: Record) -> None:
        check_record(record, full=False)
        self._coll(collection).replace_one({"_id": record["id"]}, _to_doc(record), upsert=True)

    def delete(self, collection: str, record_id: str, *, expect: Filter | None = None) -> bool:
        query = _and({"_id": record_id}, to_mongo(expect))
        return self._coll(collection).delete_one(query).deleted_count == 1

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
            position = {"$or": [{"created": {"$lt": created}},
                                {"created": created, "_id": {"$lt": last_id}}]}
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

    def ping(self) -> None:
        self.client.admin.command("ping")

    def close(self) -> None:
        self.client.close()
