"""What only the SQLite store has to prove: several processes, its SQL pre-filter never losing a
match, its schema on first use; plus open_store's URL handling and per-process cache."""

from __future__ import annotations

import itertools
import multiprocessing
import uuid
from pathlib import Path

import pytest

from caesar_faas.store import clear_cache, mongo_db_name, open_store, sqlite_path
from caesar_faas.store.filters import matches
from caesar_faas.store.sqlite import SQLiteStore
from tests.store_workers import sqlite_increments, sqlite_start_jobs

SPAWN = multiprocessing.get_context("spawn")  # no inherited connections or locks


def test_processes_cas_increment_exactly(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    SQLiteStore(path).upsert("stats", {"id": "counter", "n": 0})
    with SPAWN.Pool(3) as pool:
        pool.starmap(sqlite_increments, [(path, "counter", 40)] * 3)
    assert SQLiteStore(path).get("stats", "counter")["n"] == 120


def test_processes_race_and_exactly_one_wins(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SQLiteStore(path)
    job_ids = [str(uuid.uuid4()) for _ in range(60)]
    for i, job_id in enumerate(job_ids):
        store.insert("jobs", {"id": job_id, "owner": "u", "created": float(i), "state": "PENDING"})
    with SPAWN.Pool(2) as pool:
        first, second = pool.starmap(sqlite_start_jobs, [(path, job_ids, "one"), (path, job_ids, "two")])
    assert sorted(first + second) == sorted(job_ids)
    for name, won in (("one", first), ("two", second)):
        assert all(store.get("jobs", j)["by"] == name for j in won)


# Values that SQL and Python compare differently (bools stored as 0/1, lists, strings vs numbers).
ODD_VALUES = [None, "x", "1", 1, 1.0, 0, True, False, ["x"], {"k": "x"}, 2.5, "PENDING"]
ODD_FILTERS = [
    {"tag": v} for v in ODD_VALUES if not isinstance(v, list | dict)
] + [
    {"tag": {"in": ["x", None]}}, {"tag": {"in": [True]}}, {"tag": {"in": [1]}}, {"tag": {"in": []}},
    {"tag": {"nin": ["x"]}}, {"tag": {"nin": [True]}}, {"tag": {"nin": [1, None]}}, {"tag": {"nin": []}},
    {"tag": {"lt": 2}}, {"tag": {"gte": 1}}, {"tag": {"gt": 0, "lte": 2.5}},
    {"active": True}, {"active": {"nin": ["1"]}}, {"owner": 1}, {"id": {"in": ["3", 3]}},
]


@pytest.mark.parametrize("where", ODD_FILTERS, ids=[str(f) for f in ODD_FILTERS])
def test_sql_prefilter_never_drops_a_match(sqlite_store: SQLiteStore, where: dict) -> None:
    records = []
    for i, (tag, active) in enumerate(itertools.product(ODD_VALUES, [True, 1, None])):
        record = {"id": str(i), "owner": "u" if i % 2 else 1, "created": float(i), "active": active}
        if i % 3:  # and sometimes the field is missing altogether
            record["tag"] = tag
        records.append(record)
        sqlite_store.upsert("jobs", record)
    expected = [r["id"] for r in records if matches(r, where)]
    assert [r["id"] for r in sqlite_store.find("jobs", where)] == expected
    assert sqlite_store.count("jobs", where) == len(expected)


def test_schema_and_folder_created_on_first_use_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "caesar.db"
    one, two = SQLiteStore(path), SQLiteStore(path)
    one.insert("files", {"id": "f", "owner": "u", "created": 1.0, "status": "ready"})
    assert path.exists()
    assert two.find("files", {"status": "ready"})[0]["id"] == "f"
    one.close()
    assert one.get("files", "f")["id"] == "f"  # reopens after close
    two.close()


def test_open_store_caches_per_url_and_parses_urls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    try:
        first = open_store(url)
        assert isinstance(first, SQLiteStore) and first.path == tmp_path / "a.db"
        assert open_store(url) is first
        assert open_store(f"sqlite:///{tmp_path}/b.db") is not first
    finally:
        clear_cache()
    assert open_store(url) is not first
    clear_cache()
    for bad in ("sqlite://relative.db", "sqlite:///:memory:x/", "postgres://h/db", "sqlite:///"):
        with pytest.raises(ValueError):
            open_store(bad)
    assert sqlite_path("sqlite:///abs/my%20x.db") == "/abs/my x.db"
    assert sqlite_path("sqlite:////abs/x.db") == "/abs/x.db"  # f"sqlite:///{absolute path}"


_inherited: list = []


def test_after_fork_a_child_gets_its_own_store_and_connection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    store = open_store(url)
    store.upsert("stats", {"id": "s", "n": 1})  # the parent now holds an open connection
    _inherited[:] = [store]
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            fresh, n_cached, n_inherited = pool.apply(_in_forked_child, (url,))
    finally:
        _inherited.clear()
        clear_cache()
    assert fresh and n_cached == 2 and n_inherited == 3


def _in_forked_child(url: str) -> tuple[bool, int, int]:
    cached = open_store(url)
    cached.update("stats", "s", {"n": 2}, expect={"n": 1})
    n_cached = cached.get("stats", "s")["n"]
    _inherited[0].update("stats", "s", {"n": 3}, expect={"n": 2})  # reconnects, not reuses
    return cached is not _inherited[0], n_cached, _inherited[0].get("stats", "s")["n"]


@pytest.mark.parametrize(("url", "name"), [
    ("mongodb://localhost:27017", "caesar"),
    ("mongodb://localhost:27017/", "caesar"),
    ("mongodb://user:p%40ss@h1:1,h2:2/jobsdb?replicaSet=rs0&authSource=admin", "jobsdb"),
    ("mongodb+srv://user:pw@cluster.example.org/prod?retryWrites=true", "prod"),
])
def test_mongo_db_name_from_url(url: str, name: str) -> None:
    assert mongo_db_name(url) == name


def test_mongo_db_name_rejects_invalid() -> None:
    with pytest.raises(ValueError):
        mongo_db_name("mongodb://h/a.b")
