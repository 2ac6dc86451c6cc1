"""SQLiteStore.get answers a repeated point read from memory while nothing has been committed
(store/wal_version.py), and never answers stale: every commit of any process, connection or
kind (update, plain upsert, delete, a checkpoint that restarts the WAL) is seen by the next
read."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from caesar_faas.store import wal_version
from caesar_faas.store.sqlite import SQLiteStore
from tests.store_workers import shm_dms_held, sqlite_increments

SPAWN = multiprocessing.get_context("spawn")
JOB = "5d7c3a1e-0b9f-4c2d-8e6a-1f2b3c4d5e6f"


def _update_elsewhere(path: str, changes: dict) -> None:
    other = SQLiteStore(path)
    try:
        other.update("jobs", JOB, changes)
    finally:
        other.close()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The test process has opened many databases before these tests: past MAX_MAPPINGS a store
    # reads through SQLite every time (correct, but not what is tested here).
    monkeypatch.setattr(wal_version, "MAX_MAPPINGS", 10_000)
    store = SQLiteStore(tmp_path / "caesar.db")
    store.insert("jobs", {"id": JOB, "owner": "u", "created": 1.0, "state": "PENDING", "progress": 0})
    yield store
    store.close()


def statements(store: SQLiteStore) -> list[str]:
    seen: list[str] = []
    store._conn().set_trace_callback(seen.append)
    return seen


def test_a_repeated_read_runs_no_sql_and_gives_a_fresh_copy(store: SQLiteStore) -> None:
    first = store.get("jobs", JOB)
    seen = statements(store)
    second = store.get("jobs", JOB)
    assert seen == [] and second == first
    second["state"] = "changed by the caller"
    assert store.get("jobs", JOB)["state"] == "PENDING"  # the caller's copy is its own


def test_the_mapping_leaves_sqlites_locks_in_place(store: SQLiteStore) -> None:
    """SQLite's locks on the -shm file are POSIX locks, dropped for the whole process when any
    descriptor of the file is closed: a mapping that closed its descriptor let other processes
    truncate the file under this one's connections (SIGBUS, "locking protocol")."""
    for _ in range(3):
        store.get("jobs", JOB)
    assert store._wal is not None  # the shortcut is in use
    with SPAWN.Pool(1) as pool:
        assert pool.apply(shm_dms_held, (f"{store.path}-shm",)) is True
    other = SQLiteStore(store.path)  # a second store of the same file in this process
    other.get("jobs", JOB)
    other.close()
    with SPAWN.Pool(1) as pool:
        assert pool.apply(shm_dms_held, (f"{store.path}-shm",)) is True


def test_a_write_of_another_process_is_seen_by_the_next_read(store: SQLiteStore) -> None:
    path = str(store.path)
    assert store.get("jobs", JOB)["progress"] == 0
    for progress in (10, 20, 30):
        worker = SPAWN.Process(target=_update_elsewhere, args=(path, {"progress": progress}))
        worker.start()
        worker.join(60)
        assert worker.exitcode == 0
        assert store.get("jobs", JOB)["progress"] == progress


def test_every_kind_of_commit_is_seen(store: SQLiteStore) -> None:
    other = SQLiteStore(store.path)  # another connection set: what another process does, in-process
    try:
        store.get("jobs", JOB)
        other.update("jobs", JOB, {"state": "QUEUED"})
        assert store.get("jobs", JOB)["state"] == "QUEUED"
        other.upsert("stats", {"id": "counter", "n": 1})  # outside a transaction
        assert store.get("stats", "counter")["n"] == 1
        other.upsert("stats", {"id": "counter", "n": 2})
        assert store.get("stats", "counter")["n"] == 2
        with sqlite3.connect(store.path) as raw:  # a WAL reset after a full checkpoint
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert store.get("stats", "counter")["n"] == 2
        other.upsert("stats", {"id": "counter", "n": 3})
        assert store.get("stats", "counter")["n"] == 3
        assert other.delete("jobs", JOB)
        assert store.get("jobs", JOB) is None
    finally:
        other.close()


def test_reads_follow_a_writer_process_step_by_step(store: SQLiteStore) -> None:
    """Three processes add 1 to a counter 60 times each with compare-and-set while two threads
    here read it: what they read never goes back and ends at the total."""
    store.upsert("stats", {"id": "counter", "n": 0})
    stop = threading.Event()
    regressions: list[tuple[int, int]] = []

    def read() -> None:
        last = 0
        while not stop.is_set():
            now = store.get("stats", "counter")["n"]
            if now < last:
                regressions.append((last, now))
            last = now

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        with SPAWN.Pool(3) as pool:
            pool.starmap(sqlite_increments, [(str(store.path), "counter", 60)] * 3)
    finally:
        stop.set()
        for reader in readers:
            reader.join(60)
    assert regressions == []
    assert store.get("stats", "counter")["n"] == 180


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_sees_writes_made_after_the_fork(store: SQLiteStore) -> None:
    store.get("jobs", JOB)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait for the parent's write, then read
        try:
            os.read(reader, 1)
            os._exit(0 if store.get("jobs", JOB)["state"] == "STARTED" else 3)
        except BaseException:  # noqa: BLE001
            os._exit(4)
    store.update("jobs", JOB, {"state": "STARTED"})
    os.write(writer, b"x")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_past_the_mapping_limit_reads_go_to_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wal_version, "MAX_MAPPINGS", 0)
    store = SQLiteStore(tmp_path / "caesar.db")
    try:
        store.insert("jobs", {"id": JOB, "owner": "u", "created": 1.0, "state": "PENDING"})
        store.get("jobs", JOB)
        assert store._wal is None
        seen = statements(store)
        assert store.get("jobs", JOB)["state"] == "PENDING" and len(seen) == 1
    finally:
        store.close()


def test_a_closed_store_reads_again(store: SQLiteStore) -> None:
    store.get("jobs", JOB)
    store.close()
    _update_elsewhere(str(store.path), {"state": "FAILURE"})
    assert store.get("jobs", JOB)["state"] == "FAILURE"
