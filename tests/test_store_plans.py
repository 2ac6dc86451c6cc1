"""Every query shape the services send to the store is served by an index: SQLite's EXPLAIN
QUERY PLAN for each statement it runs, and MongoDB's explain() on a real server
(CAESAR_TEST_MONGO_URL; mongomock has no planner).

A shape is one store call as the services make it (the call sites are named). The statements
each call runs are captured with a trace callback and explained one by one; a plan that reads
a whole table (SCAN <table>) fails, and so does a full walk of an index (SCAN ... USING INDEX)
or a sort of everything matched (TEMP B-TREE) unless the shape is a page that walks an index
in its own order and stops after `limit` rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from caesar_faas.store import cursors, totals
from caesar_faas.store.sqlite import SQLiteStore

NOW = 2_000_000_000.0
CURSOR = cursors.encode(1_500_000_000.0, "zzz")


@dataclass(frozen=True)
class Shape:
    name: str  # where the services make this call
    call: Callable[[Any], Any]
    walks_in_order: bool = False  # a page: an index walked newest first, stopped after limit rows
    bound: tuple[str, ...] = ()  # columns the index search must constrain (not just one of them)


SHAPES = [
    Shape("jobs.control.get_status / files.get_file: get by id", lambda s: s.get("jobs", "x")),
    Shape("update (compare-and-set) by id", lambda s: s.update("jobs", "j0", {"progress": 5}, expect={"state": "RUNNING"})),
    Shape("delete by id", lambda s: s.delete("files", "nope", expect={"status": "deleting"})),
    Shape("jobs.control.list_jobs: owner's page", lambda s: s.page("jobs", {"owner": "u1"}, limit=50)),
    Shape("jobs.control.list_jobs: owner's deep page", lambda s: s.page("jobs", {"owner": "u1"}, limit=50, cursor=CURSOR)),
    Shape("jobs.control.list_jobs: by state", lambda s: s.page("jobs", {"owner": "u1", "state": "SUCCESS"}, limit=50,
                                                               cursor=CURSOR), bound=("owner", "state")),
    Shape("jobs.control.list_jobs: by app", lambda s: s.page("jobs", {"owner": "u1", "app": "sep"}, limit=50, cursor=CURSOR),
          bound=("owner", "app")),
    Shape("jobs.control.list_jobs: by tag", lambda s: s.page("jobs", {"owner": "u1", "tag": "t"}, limit=50, cursor=CURSOR),
          bound=("owner", "tag")),
    Shape("jobs.control.list_jobs: admin, every job", lambda s: s.page("jobs", {}, limit=50, cursor=CURSOR),
          walks_in_order=True),
    Shape("jobs.control.list_jobs: admin, by state", lambda s: s.page("jobs", {"state": "FAILURE"}, limit=50, cursor=CURSOR)),
    Shape("files.list_files: owner's page", lambda s: s.page("files", {"owner": "u1", "status": {
        "in": ["ready", "pending", "invalid"]}}, limit=50, cursor=CURSOR)),
    Shape("files.list_files: by tag", lambda s: s.page("files", {"owner": "u1", "status": {
        "in": ["ready", "pending", "invalid"]}, "tag": "t"}, limit=50, cursor=CURSOR), bound=("owner", "tag")),
    Shape("files.list_files: admin, every file", lambda s: s.page("files", {"status": {
        "in": ["ready", "pending", "invalid"]}}, limit=50, cursor=CURSOR), walks_in_order=True),
    Shape("files.all_ids: the owner's ready files", lambda s: s.find("files", {"owner": "u1", "status": "ready"}),
          bound=("owner", "status")),
    Shape("jobs.dispatch.fill_slots: active jobs", lambda s: s.count("jobs", {"active": True})),
    Shape("backends.local: active jobs", lambda s: s.find("jobs", {"active": True})),
    Shape("quotas.next_jobs_to_start: waiting and running", lambda s: s.find(
        "jobs", {"state": {"in": ["PENDING", "STARTED", "RUNNING"]}})),
    Shape("quotas.running_slots_free: one owner's", lambda s: s.find(
        "jobs", {"owner": "u1", "state": {"in": ["PENDING", "STARTED", "RUNNING"]}}), bound=("owner", "state")),
    Shape("jobs.monitor: started and running", lambda s: s.find("jobs", {"state": {"in": ["STARTED", "RUNNING"]}})),
    Shape("jobs.monitor: terminal jobs still active", lambda s: s.find(
        "jobs", {"active": True, "state": {"in": ["ABORTED", "FAILURE", "SUCCESS", "TIMED-OUT"]}}, limit=100),
          bound=("active", "state")),
    Shape("jobs.monitor: stale PENDING", lambda s: s.find("jobs", {"state": "PENDING"}, limit=100)),
    Shape("jobs.monitor: expiry batch", lambda s: s.find("jobs", {"expires": {"lt": NOW}, "active": False}, limit=100,
                                                         order="expires"), bound=("active", "expires")),
    Shape("jobs.finished: notifications sweep", lambda s: s.find(
        "jobs", {"active": False, "expires": {"gt": NOW - 600, "lt": NOW - 60}, "notify_pending": True}, limit=100,
        order="expires"), bound=("active", "expires")),
    Shape("uploads.expire: abandoned uploads", lambda s: s.find(
        "files", {"status": "pending", "expires": {"lt": NOW}}, limit=100, order="expires"), bound=("status", "expires")),
    Shape("maintenance.republish_files: the outbox", lambda s: s.find(
        "files", {"status": "ready", "announced": False, "created": {"lt": NOW}}, limit=100),
          bound=("status", "announced", "created")),
    Shape("maintenance.finish_deletions", lambda s: s.find("files", {"status": "deleting"}, limit=100)),
    Shape("accounting / quotas: one user's totals", lambda s: s.totals(totals.USER, "u1")),
    Shape("accounting: every user's totals", lambda s: s.totals(totals.USER)),
    Shape("accounting: every app's totals", lambda s: s.totals(totals.APP)),
]

FULL_SCAN = re.compile(r"^SCAN (\w+)$")  # a table read row by row, no index
INDEX_WALK = re.compile(r"^SCAN (\w+) USING (COVERING )?INDEX")


def _seed(store: SQLiteStore) -> None:
    store.insert_many("jobs", [{"id": f"j{i}", "owner": f"u{i % 3}", "created": float(i), "app": "sep",
                                "state": ["PENDING", "RUNNING", "SUCCESS"][i % 3], "active": i % 3 == 1,
                                "tag": "t", "expires": float(i)} for i in range(30)])
    store.insert_many("files", [{"id": f"f{i}", "owner": f"u{i % 3}", "created": float(i), "status": "ready",
                                 "announced": True, "tag": "t", "expires": float(i)} for i in range(30)])


def _plans(store: SQLiteStore, shape: Shape) -> list[tuple[str, list[str]]]:
    statements: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(statements.append)
    try:
        shape.call(store)
    finally:
        conn.set_trace_callback(None)
    queries = [s for s in statements if re.match(r"\s*(SELECT|UPDATE|DELETE)", s, re.I)]
    assert queries, f"{shape.name}: ran no query"
    return [(sql, [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]) for sql in queries]


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_every_query_shape_uses_an_index_on_sqlite(tmp_path, shape):
    store = SQLiteStore(tmp_path / "caesar.db")
    try:
        _seed(store)
        for sql, plan in _plans(store, shape):
            for step in plan:
                assert not FULL_SCAN.match(step), f"{shape.name}: full table scan in {plan} for {sql}"
                if not shape.walks_in_order:
                    assert not INDEX_WALK.match(step), f"{shape.name}: walks a whole index: {plan} for {sql}"
            searches = [step for step in plan if step.startswith("SEARCH")]
            for column in shape.bound:
                assert any(re.search(rf"\b{column}[=<>]", step) for step in searches), \
                    f"{shape.name}: the index search does not constrain {column}: {plan}"
            if shape.walks_in_order or "page" in shape.name or "list" in shape.name:
                assert not any("TEMP B-TREE" in step for step in plan), f"{shape.name}: sorts every match: {plan}"
    finally:
        store.close()


def test_batches_are_not_sorted_after_reading_every_match(tmp_path):
    """The bounded batches (expiry, outboxes, queues) walk an index in their own order, so a batch
    of 100 reads about 100 rows however many match."""
    store = SQLiteStore(tmp_path / "caesar.db")
    try:
        _seed(store)
        batches = [s for s in SHAPES if s.name.startswith(("jobs.monitor: expiry", "uploads.expire",
                                                           "maintenance.", "jobs.monitor: stale"))]
        assert len(batches) == 5
        for shape in batches:
            for sql, plan in _plans(store, shape):
                if sql.lstrip().upper().startswith("SELECT DOC FROM"):
                    assert not any("TEMP B-TREE" in step for step in plan), f"{shape.name}: {plan}"
    finally:
        store.close()


def _winning_stages(plan: dict[str, Any]) -> list[str]:
    stages, todo = [], [plan]
    while todo:
        node = todo.pop()
        stages.append(node.get("stage", ""))
        todo.extend(node.get("inputStages", []))
        if "inputStage" in node:
            todo.append(node["inputStage"])
    return stages


def test_every_query_shape_uses_an_index_on_mongodb(real_mongo_store):
    """The MongoDB store's queries for the same shapes, explained by the server."""
    from caesar_faas.store.filters import to_mongo

    store = real_mongo_store
    store.ensure_indexes()
    filters = [
        ("jobs", {"owner": "u1"}, [("created", -1), ("_id", -1)]),
        ("jobs", {"owner": "u1", "state": "SUCCESS"}, [("created", -1), ("_id", -1)]),
        ("jobs", {"owner": "u1", "app": "sep"}, [("created", -1), ("_id", -1)]),
        ("jobs", {"active": True}, None),
        ("jobs", {"state": {"in": ["PENDING", "STARTED", "RUNNING"]}}, [("created", 1), ("_id", 1)]),
        ("jobs", {"expires": {"lt": NOW}, "active": False}, [("expires", 1), ("_id", 1)]),
        ("jobs", {"active": False, "expires": {"gt": NOW - 600, "lt": NOW - 60}, "notify_pending": True},
         [("expires", 1), ("_id", 1)]),
        ("files", {"status": "pending", "expires": {"lt": NOW}}, [("expires", 1), ("_id", 1)]),
        ("files", {"status": "ready", "announced": False, "created": {"lt": NOW}}, [("created", 1), ("_id", 1)]),
        ("files", {"owner": "u1", "tag": "t"}, [("created", -1), ("_id", -1)]),
    ]
    for collection, where, sort in filters:
        cursor = store.db[collection].find(to_mongo(where))
        if sort:
            cursor = cursor.sort(sort).limit(50)
        stages = _winning_stages(cursor.explain()["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in stages, f"{collection} {where}: {stages}"
