"""The Store contract (caesar_faas/store/base.py), run on every implementation: SQLite on a temp
file, MongoStore on mongomock, and a real MongoDB when CAESAR_TEST_MONGO_URL is set."""

from __future__ import annotations

import base64
import threading
import uuid

import pytest

from caesar_faas.store import DuplicateId, Store
from caesar_faas.store.filters import matches
from tests.store_workers import cas_increment

JOBS = [
    {"id": "a", "owner": "u1", "created": 1.0, "state": "PENDING", "active": True, "app": "sep",
     "tag": "x", "progress": 0, "size": 10},
    {"id": "b", "owner": "u1", "created": 2.0, "state": "RUNNING", "active": True, "app": "aegean",
     "tag": None, "progress": 50, "size": 20.5},
    {"id": "c", "owner": "u2", "created": 3.0, "state": "SUCCESS", "active": False, "app": "sep",
     "progress": 100},
    {"id": "d", "owner": "u2", "created": 4.0, "state": "FAILURE", "active": False, "app": "pybdsf",
     "tag": "y", "progress": "n/a", "meta": {"k": 1}},
    {"id": "e", "owner": "u1", "created": 5.0, "state": "ABORTED", "active": True, "app": "sep",
     "tag": "x", "progress": 30, "size": 0},
]

# filter -> the ids it selects (written out by hand, not derived from any implementation)
FILTER_CASES = [
    ({}, "abcde"),
    ({"owner": "u1"}, "abe"),
    ({"id": "c"}, "c"),
    ({"tag": None}, "bc"),  # null and missing
    ({"tag": "x"}, "ae"),
    ({"active": True}, "abe"),
    ({"active": False}, "cd"),
    ({"progress": 50.0}, "b"),  # int and float compare equal
    ({"meta.k": 1}, "d"),
    ({"app": "nothing"}, ""),
    ({"state": {"in": ["PENDING", "RUNNING"]}}, "ab"),
    ({"id": {"in": ["a", "e", "zz"]}}, "ae"),
    ({"tag": {"in": ["y", None]}}, "bcd"),
    ({"state": {"nin": ["SUCCESS", "FAILURE", "ABORTED"]}}, "ab"),
    ({"tag": {"nin": ["x"]}}, "bcd"),  # missing and null are "none of"
    ({"tag": {"nin": [None]}}, "ade"),
    ({"progress": {"lt": 50}}, "ae"),  # the string "n/a" never compares
    ({"progress": {"lte": 50}}, "abe"),
    ({"progress": {"gt": 30}}, "bc"),
    ({"progress": {"gte": 30}}, "bce"),
    ({"progress": {"gte": 30, "lt": 100}}, "be"),
    ({"size": {"gte": 0}}, "abe"),  # missing never matches a comparison
    ({"owner": "u1", "app": "sep", "state": {"nin": ["ABORTED"]}}, "a"),
    ({"active": True, "progress": {"gt": 0}}, "be"),
]


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


@pytest.fixture
def atomic_store(store: Store, request: pytest.FixtureRequest) -> Store:
    """The stores whose compare-and-set is atomic between threads; mongomock's is not (it lost
    ~45% of 2000 contended increments when tried), real MongoDB's is."""
    if request.node.callspec.params["any_store"] == "mongomock":
        pytest.skip("mongomock's find_one_and_update is not atomic across threads")
    return store


@pytest.fixture
def jobs(store: Store) -> Store:
    for job in JOBS:
        store.insert("jobs", dict(job))
    return store


def ids(records: list[dict]) -> str:
    return "".join(sorted(r["id"] for r in records))


def drain(store: Store, collection: str, where: dict | None, limit: int) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        page = store.page(collection, where, limit=limit, cursor=cursor)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
        assert len(pages) < 100, "pagination does not terminate"


# -- single records ------------------------------------------------------------------------------


def test_insert_get_roundtrip_without_internal_keys(jobs: Store) -> None:
    got = jobs.get("jobs", "d")
    assert got == JOBS[3]
    assert "_id" not in got
    got["state"] = "mutated"  # a returned record is a copy
    assert jobs.get("jobs", "d")["state"] == "FAILURE"
    assert jobs.get("jobs", "missing") is None


def test_duplicate_insert_raises_and_keeps_the_original(jobs: Store) -> None:
    with pytest.raises(DuplicateId):
        jobs.insert("jobs", {"id": "a", "owner": "intruder", "created": 9.0})
    assert jobs.get("jobs", "a") == JOBS[0]


def test_invalid_input_is_rejected(store: Store) -> None:
    with pytest.raises(ValueError):
        store.insert("nope", {"id": "x", "owner": "u", "created": 1.0})
    with pytest.raises(ValueError):
        store.insert("jobs", {"owner": "u", "created": 1.0})  # no id
    with pytest.raises(ValueError):
        store.insert("jobs", {"id": "x", "created": 1.0})  # no owner
    store.insert("jobs", {"id": "x", "owner": "u", "created": 1.0, "n": 1})
    with pytest.raises(ValueError):
        store.update("jobs", "x", {"id": "y"})
    with pytest.raises(ValueError):
        store.update("jobs", "x", {"n": 2}, unset=["n"])
    with pytest.raises(ValueError):
        store.update("jobs", "x", {"n": 2}, expect={"n": {"like": 1}})
    with pytest.raises(ValueError):
        store.find("jobs", {"n": {"lt": "3"}})
    with pytest.raises(ValueError):
        store.count("jobs", {"n": [1, 2]})
    assert store.get("jobs", "x")["n"] == 1


def test_update_without_expect_applies_and_persists(jobs: Store) -> None:
    after = jobs.update("jobs", "a", {"progress": 10, "message": "hi"})
    assert after == {**JOBS[0], "progress": 10, "message": "hi"}
    assert jobs.get("jobs", "a") == after
    assert jobs.update("jobs", "missing", {"progress": 1}) is None
    assert jobs.get("jobs", "missing") is None


def test_cas_success_and_failure_changes_nothing(jobs: Store) -> None:
    won = jobs.update("jobs", "a", {"state": "STARTED"}, expect={"state": "PENDING"})
    assert won is not None and won["state"] == "STARTED"
    before = jobs.get("jobs", "a")
    assert jobs.update("jobs", "a", {"state": "STARTED", "x": 1}, expect={"state": "PENDING"},
                       unset=["tag"]) is None
    assert jobs.get("jobs", "a") == before
    assert jobs.update("jobs", "missing", {"state": "STARTED"}, expect={"state": "PENDING"}) is None


@pytest.mark.parametrize(("expect", "ok"), [
    ({"state": {"in": ["PENDING", "STARTED"]}}, True),
    ({"state": {"in": ["RUNNING"]}}, False),
    ({"state": {"nin": ["SUCCESS", "FAILURE"]}}, True),
    ({"state": {"nin": ["PENDING"]}}, False),
    ({"backend_id": None}, True),  # missing counts as None: "launch only once"
    ({"tag": None}, False),
    ({"progress": {"lt": 1}}, True),
    ({"progress": {"gt": 0}}, False),
    ({"progress": {"lte": 0, "gte": 0}}, True),
    ({"size": {"gte": 11}}, False),
    ({"owner": "u1", "active": True}, True),
    ({"owner": "u1", "active": False}, False),
])
def test_cas_with_each_operator(jobs: Store, expect: dict, ok: bool) -> None:
    before = jobs.get("jobs", "a")
    after = jobs.update("jobs", "a", {"backend_id": "b-1"}, expect=expect)
    assert (after is not None) is ok
    assert jobs.get("jobs", "a") == ({**before, "backend_id": "b-1"} if ok else before)


def test_empty_change_is_a_pure_check(jobs: Store) -> None:
    assert jobs.update("jobs", "a", {}, expect={"state": "PENDING"}) == JOBS[0]
    assert jobs.update("jobs", "a", {}, expect={"state": "RUNNING"}) is None


def test_unset_removes_fields(jobs: Store) -> None:
    after = jobs.update("jobs", "a", {"state": "STARTED"}, unset=["tag", "not_there"],
                        expect={"state": "PENDING"})
    assert "tag" not in after and after["state"] == "STARTED"
    assert jobs.get("jobs", "a") == after
    assert jobs.count("jobs", {"tag": "x"}) == 1  # the indexed column followed the change
    assert "app" not in jobs.update("jobs", "a", {}, unset=["app"])
    assert jobs.count("jobs", {"app": "sep"}) == 2


def test_update_keeps_indexed_filters_in_step(jobs: Store) -> None:
    jobs.update("jobs", "a", {"state": "SUCCESS", "active": False, "owner": "u3"})
    assert ids(jobs.find("jobs", {"state": "SUCCESS"})) == "ac"
    assert ids(jobs.find("jobs", {"active": False})) == "acd"
    assert ids(jobs.find("jobs", {"owner": "u3"})) == "a"


def test_upsert_inserts_then_replaces_whole_record(store: Store) -> None:
    store.upsert("users", {"id": "u1", "limits": {"jobs": 3}, "note": "x"})
    assert store.get("users", "u1") == {"id": "u1", "limits": {"jobs": 3}, "note": "x"}
    store.upsert("users", {"id": "u1", "limits": {"jobs": 5}})
    assert store.get("users", "u1") == {"id": "u1", "limits": {"jobs": 5}}
    store.upsert("stats", {"id": "accounting", "total": 1.5})
    assert store.find("stats") == [{"id": "accounting", "total": 1.5}]
    store.upsert("jobs", {**JOBS[0], "state": "RUNNING"})
    assert ids(store.find("jobs", {"state": "RUNNING"})) == "a"


def test_delete_with_and_without_expect(jobs: Store) -> None:
    assert jobs.delete("jobs", "c", expect={"active": True}) is False
    assert jobs.get("jobs", "c") == JOBS[2]
    assert jobs.delete("jobs", "c", expect={"active": False, "state": {"in": ["SUCCESS"]}}) is True
    assert jobs.get("jobs", "c") is None
    assert jobs.delete("jobs", "c") is False
    assert jobs.delete("jobs", "d") is True
    assert ids(jobs.find("jobs")) == "abe"


# -- queries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "expected"), FILTER_CASES, ids=[str(c[0]) for c in FILTER_CASES])
def test_filters_select_exactly(jobs: Store, where: dict, expected: str) -> None:
    assert ids([r for r in JOBS if matches(r, where)]) == expected  # the Python reference
    assert ids(jobs.find("jobs", where)) == expected
    assert jobs.count("jobs", where) == len(expected)
    pages = drain(jobs, "jobs", where, limit=2)
    flat = [r for p in pages for r in p]
    assert [r["id"] for r in flat] == sorted(expected, reverse=True)  # created order = id order
    assert all(0 < len(p) <= 2 for p in pages) or expected == ""


def test_find_orders_ascending_and_limits(jobs: Store) -> None:
    assert [r["id"] for r in jobs.find("jobs")] == list("abcde")
    assert [r["id"] for r in jobs.find("jobs", {"owner": "u1"}, limit=2)] == ["a", "b"]
    assert [r["id"] for r in jobs.find("jobs", order="id", limit=1)] == ["a"]
    jobs.update("jobs", "e", {"created": 0.5})
    assert [r["id"] for r in jobs.find("jobs", order="created")] == list("eabcd")
    # missing first, then numbers; ties broken by id
    assert [r["id"] for r in jobs.find("jobs", order="size")] == ["c", "d", "e", "a", "b"]
    assert [r["id"] for r in jobs.find("jobs", {"active": True}, order="state", limit=2)] == ["e", "a"]


def test_sum_counts_missing_and_non_numbers_as_zero(jobs: Store) -> None:
    assert jobs.sum("jobs", "size") == pytest.approx(30.5)
    assert jobs.sum("jobs", "progress") == pytest.approx(180)
    assert jobs.sum("jobs", "progress", {"owner": "u1"}) == pytest.approx(80)
    assert jobs.sum("jobs", "size", {"owner": "u2"}) == 0
    assert jobs.sum("jobs", "size", {"owner": "nobody"}) == 0
    assert isinstance(jobs.sum("jobs", "size"), float)


def test_count(jobs: Store) -> None:
    assert jobs.count("jobs") == 5
    assert jobs.count("jobs", {"owner": "u1", "active": True}) == 3
    assert jobs.count("files") == 0


# -- pagination ----------------------------------------------------------------------------------


def _files(store: Store, owner: str, createds: list[float], **extra) -> list[dict]:
    records = [{"id": str(uuid.uuid4()), "owner": owner, "created": c, "status": "ready",
                "size": i, **extra} for i, c in enumerate(createds)]
    for r in records:
        store.insert("files", r)
    return records


def newest_first(records: list[dict]) -> list[str]:
    return [r["id"] for r in sorted(records, key=lambda r: (r["created"], r["id"]), reverse=True)]


def test_page_walks_newest_first_over_ties(store: Store) -> None:
    mine = _files(store, "u1", [1, 2, 2, 2, 3, 4, 5, 5, 6, 7])
    _files(store, "u2", [2, 5, 9])
    pages = drain(store, "files", {"owner": "u1"}, limit=3)
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [r["id"] for p in pages for r in p] == newest_first(mine)
    exact = drain(store, "files", {"owner": "u1"}, limit=5)
    assert [len(p) for p in exact] == [5, 5]  # no empty trailing page
    assert len([r for p in drain(store, "files", None, limit=4) for r in p]) == 13


def test_page_is_stable_under_concurrent_inserts(store: Store) -> None:
    mine = _files(store, "u1", [1, 2, 3, 4, 5, 6, 7])
    first = store.page("files", {"owner": "u1"}, limit=3)
    assert [r["id"] for r in first.items] == newest_first(mine)[:3]
    newer = _files(store, "u1", [100])  # lands before the cursor: not served again
    older = _files(store, "u1", [3.5])  # lands after it: served in order
    rest = drain_from(store, first.next_cursor)
    assert [r["id"] for r in first.items + rest] == newest_first(mine + older)
    assert newer[0]["id"] not in [r["id"] for r in rest]


def drain_from(store: Store, cursor: str) -> list[dict]:
    out = []
    while cursor:
        page = store.page("files", {"owner": "u1"}, limit=3, cursor=cursor)
        out += page.items
        cursor = page.next_cursor
    return out


def test_page_with_filters_on_unindexed_fields(store: Store) -> None:
    records = _files(store, "u1", [float(i) for i in range(12)])
    wanted = [r for r in records if r["size"] % 3 == 0 and r["size"] > 0]  # sizes 3, 6, 9
    for r in records:
        store.update("files", r["id"], {"odd": r not in wanted})
    pages = drain(store, "files", {"owner": "u1", "odd": False, "size": {"gt": 0}}, limit=2)
    assert [len(p) for p in pages] == [2, 1]
    assert [r["id"] for p in pages for r in p] == newest_first(wanted)


def test_page_on_empty_result(store: Store) -> None:
    page = store.page("files", {"owner": "nobody"}, limit=5)
    assert page.items == [] and page.next_cursor is None


@pytest.mark.parametrize("cursor", [
    "garbage!", "", "e30", base64.urlsafe_b64encode(b'[1, "x"]').decode(),
    base64.urlsafe_b64encode(b'[2, 1.0, "x"]').decode(),
    base64.urlsafe_b64encode(b'[1, "1.0", "x"]').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_forged_cursor_is_rejected(store: Store, cursor: str) -> None:
    _files(store, "u1", [1, 2, 3])
    with pytest.raises(ValueError):
        store.page("files", None, limit=1, cursor=cursor)


def test_page_limit_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError):
        store.page("files", None, limit=0)


def test_ping(store: Store) -> None:
    store.ping()


# -- concurrency ---------------------------------------------------------------------------------


def run_threads(targets: list) -> list:
    results: list = [None] * len(targets)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = targets[i]()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return results


def test_threads_cas_increment_exactly(atomic_store: Store) -> None:
    store = atomic_store
    store.upsert("stats", {"id": "counter", "n": 0})
    n_threads, times = 6, 25
    run_threads([lambda: cas_increment(store, "counter", times)] * n_threads)
    assert store.get("stats", "counter")["n"] == n_threads * times


def test_two_racers_exactly_one_wins(atomic_store: Store) -> None:
    store = atomic_store
    job_ids = [str(uuid.uuid4()) for _ in range(30)]
    for i, job_id in enumerate(job_ids):
        store.insert("jobs", {"id": job_id, "owner": "u", "created": float(i), "state": "PENDING"})
    barrier = threading.Barrier(2)

    def racer(name: str) -> list[str]:
        won = []
        for job_id in job_ids:
            barrier.wait(timeout=30)
            if store.update("jobs", job_id, {"state": "STARTED", "by": name},
                            expect={"state": "PENDING"}):
                won.append(job_id)
        return won

    first, second = run_threads([lambda: racer("one"), lambda: racer("two")])
    assert sorted(first + second) == sorted(job_ids)  # every job won exactly once
    for name, won in (("one", first), ("two", second)):
        assert all(store.get("jobs", j)["by"] == name for j in won)
