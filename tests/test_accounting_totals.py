"""Running totals (store.totals): maintained with every write on both backends, equal to a
recount from the records (rebuild) after a random mix of uploads, deletions, submissions,
starts, successes, failures, cancels, lost compare-and-sets and expiries; the store counts an
older database once by itself; the rebuild command; durations from the histogram; memory of
compute() independent of the number of records."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from caesar_faas import accounting, quotas
from caesar_faas.ids import new_id
from caesar_faas.store import totals
from caesar_faas.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
OWNERS = ["alice", "bob@example.org", "carol.smith", "d$ave"]
APPS = ["sep", "aegean", "py.bdsf"]  # a dot in a name must not become a MongoDB path


@pytest.fixture(params=["sqlite_store", "mongomock_store"])
def store(request):
    return request.getfixturevalue(request.param)


def _snapshot(store) -> dict:
    return {kind: store.totals(kind) for kind in totals.KINDS}


def random_mix(store, seed: int, steps: int = 600) -> None:
    rnd = random.Random(seed)
    clock = 1_800_000_000.0
    files: list[str] = []
    jobs: list[str] = []
    for _ in range(steps):
        clock += rnd.uniform(0.5, 50)
        owner = rnd.choice(OWNERS)
        roll = rnd.random()
        if roll < 0.2:
            record = {"id": new_id(), "owner": owner, "created": clock, "size": rnd.randint(0, 10**9),
                      "status": rnd.choice(["ready", "pending", "invalid"]), "announced": False}
            store.insert("files", record)
            files.append(record["id"])
        elif roll < 0.3 and files:
            file_id = files.pop(rnd.randrange(len(files)))
            if rnd.random() < 0.5:  # upload completes, then is deleted later
                store.update("files", file_id, {"status": "ready"}, expect={"status": "pending"})
                files.append(file_id)
                continue
            assert store.update("files", file_id, {"status": "deleting"}) is not None
            assert store.delete("files", file_id, expect={"status": "deleting"})
        elif roll < 0.5:
            job = {"id": new_id(), "owner": owner, "created": clock, "state": "PENDING", "app": rnd.choice(APPS),
                   "active": False}
            store.insert("jobs", job)
            jobs.append(job["id"])
        elif roll < 0.9 and jobs:
            job_id = rnd.choice(jobs)
            job = store.get("jobs", job_id)
            state = job["state"]
            if state == "PENDING" and rnd.random() < 0.7:
                store.update("jobs", job_id, {"state": "STARTED", "started": clock, "active": True},
                             expect={"state": "PENDING"})
            elif state in ("STARTED", "RUNNING") and rnd.random() < 0.3:
                store.update("jobs", job_id, {"state": "RUNNING", "progress": rnd.randint(1, 99)},
                             expect={"state": {"in": ["STARTED", "RUNNING"]}})
            elif state in ("PENDING", "STARTED", "RUNNING"):
                final = rnd.choice(["SUCCESS", "SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED"])
                started = job.get("started")
                changes = {"state": final, "finished": clock, "expires": clock + rnd.uniform(0, 500)}
                if started is not None:
                    changes["elapsed"] = round(clock - started, 6)
                    if rnd.random() < 0.8:
                        changes["cpu_seconds"] = round(rnd.uniform(0, 3 * (clock - started)), 6)
                assert store.update("jobs", job_id, changes, expect={"state": state}) is not None
                # The same event again (a duplicate delivery) loses its compare-and-set.
                assert store.update("jobs", job_id, changes, expect={"state": state}) is None
            else:
                store.update("jobs", job_id, {"active": False}, expect={"active": True})
        else:  # the monitor's expiry: terminal, inactive, past `expires`
            for job in store.find("jobs", {"expires": {"lt": clock}, "active": False}, limit=5, order="expires"):
                if store.delete("jobs", job["id"], expect={"expires": {"lt": clock}, "active": False}):
                    jobs.remove(job["id"])


def test_rebuilt_totals_equal_the_incremental_ones(store):
    random_mix(store, seed=5)
    incremental = _snapshot(store)
    assert {a["name"] for a in incremental["user"]} <= set(OWNERS) and incremental["app"]
    every_state = {k for a in incremental["app"] for k in a["counts"] if k.startswith("jobs_by_state")}
    assert len(every_state) >= 5  # the mix reached most states
    store.rebuild_totals()
    assert _snapshot(store) == incremental
    # And the figures agree with counting the records one by one.
    for owner in OWNERS:
        files = store.find("files", {"owner": owner, "status": {"in": quotas.COUNTED_FILE_STATUSES}})
        used = quotas.usage(store, owner)
        assert used.files == len(files) and used.bytes == sum(f["size"] for f in files)
        assert used.queued_jobs == store.count("jobs", {"owner": owner, "state": "PENDING"})
        assert used.running_jobs == store.count("jobs", {"owner": owner, "state": {"in": ["STARTED", "RUNNING"]}})
        figures = accounting.for_user(accounting.compute(store, 0.0, owner=owner), owner)
        jobs = store.find("jobs", {"owner": owner})
        assert figures["jobs"] == len(jobs)
        assert figures["cpu_seconds"] == pytest.approx(sum(j.get("cpu_seconds", 0) for j in jobs), abs=1e-5)
    # The site aggregate is every user's files at once.
    site, = store.totals(totals.SITE, totals.SITE_NAME)
    for status, count in totals.split(site["counts"], "files_by_status").items():
        listed = store.find("files", {"status": status})
        assert count == len(listed) and totals.split(site["counts"], "bytes_by_status")[status] == sum(
            f["size"] for f in listed)


def test_a_write_that_changes_no_figure_writes_no_total(sqlite_store):
    sqlite_store.insert("jobs", {"id": "j1", "owner": "alice", "created": 1.0, "state": "RUNNING", "app": "sep"})
    before = _snapshot(sqlite_store)
    statements: list[str] = []
    conn = sqlite_store._conn()
    conn.set_trace_callback(statements.append)
    try:
        sqlite_store.update("jobs", "j1", {"progress": 50})
    finally:
        conn.set_trace_callback(None)
    assert not [s for s in statements if "totals" in s]
    assert _snapshot(sqlite_store) == before


def test_an_older_sqlite_database_is_counted_once_when_opened(tmp_path):
    path = tmp_path / "caesar.db"
    store = SQLiteStore(path)
    random_mix(store, seed=9, steps=200)
    expected = _snapshot(store)
    store.close()
    with sqlite3.connect(path) as conn:  # what a database of the previous version looks like
        conn.execute("DROP TABLE totals")
        conn.execute("DROP INDEX files_status_announced_created_id")
        conn.execute("ALTER TABLE files DROP COLUMN announced")
    reopened = SQLiteStore(path)
    try:
        assert _snapshot(reopened) == expected
        unannounced = reopened.find("files", {"announced": False}, limit=1000)
        assert len(unannounced) == reopened.count("files")  # the new column was filled from the records
    finally:
        reopened.close()


def test_the_rebuild_command_recounts_the_store_of_caesar_home(tmp_path):
    store = SQLiteStore(tmp_path / "caesar.db")
    random_mix(store, seed=13, steps=150)
    expected = _snapshot(store)
    conn = store._conn()
    conn.execute("UPDATE totals SET doc = json_set(doc, '$.counts.jobs', 999999) WHERE kind = 'user'")  # damage
    assert _snapshot(store) != expected
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAESAR_")}
    env.update(CAESAR_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "caesar_faas.store.rebuild"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout)
    assert report["rebuilt"] == sum(map(len, expected.values())) and report["store"] == "sqlite"
    assert _snapshot(store) == expected
    store.close()


def test_durations_from_the_histogram_are_within_two_percent():
    values = np.random.default_rng(4).lognormal(mean=3.0, sigma=1.5, size=20_000)
    histogram = totals.empty_runs()
    for value in values:
        histogram[totals.bucket(float(value))] += 1
    for fraction in (0.05, 0.5, 0.95, 0.99):
        assert totals.quantile(histogram, fraction) == pytest.approx(np.quantile(values, fraction), rel=0.02)
    assert totals.quantile(totals.empty_runs(), 0.5) is None
    assert totals.bucket(1e9) == totals.RUN_BUCKETS - 1  # past the last decade: counted in the last bucket
    for seconds in (0.0, 1e-3, 0.0011, 1.0, 59.9, 3600.0, 1e6):
        low, high = totals.bucket_bounds(totals.bucket(seconds))
        assert low <= seconds <= high


def test_names_with_dots_dollars_and_bars_are_kept(store):
    store.insert("jobs", {"id": "j1", "owner": "a.b$c|d", "created": 1.0, "state": "SUCCESS", "app": "x.y$z%",
                          "elapsed": 2.0})
    user, = store.totals(totals.USER)
    app, = store.totals(totals.APP)
    assert user["name"] == "a.b$c|d" and app["name"] == "x.y$z%"
    figures = accounting.compute(store, 0.0)
    assert figures["users"][0]["jobs_by_app"] == {"x.y$z%": 1} and figures["apps"][0]["app"] == "x.y$z%"


def _seed(store, owner: str, n: int) -> None:
    batch = [{"id": f"{owner}-{i}", "owner": owner, "created": float(i), "state": "SUCCESS", "app": "sep",
              "elapsed": 1.0 + i % 500, "cpu_seconds": 0.5} for i in range(n)]
    store.insert_many("jobs", batch)
    store.insert_many("files", [{"id": f"{owner}-f{i}", "owner": owner, "created": float(i), "status": "ready",
                                 "size": 100} for i in range(n)])


def _peak_of_compute(store) -> int:
    tracemalloc.start()
    try:
        accounting.compute(store, 0.0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_compute_needs_the_same_memory_for_20_or_5000_records(tmp_path):
    small, large = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "l.db")
    try:
        _seed(small, "alice", 20)
        _seed(large, "alice", 5000)
        assert accounting.compute(large, 0.0)["totals"]["jobs"] == 5000
        _peak_of_compute(small), _peak_of_compute(large)  # warm both: first calls import and cache
        assert _peak_of_compute(large) < 2 * _peak_of_compute(small) + 64 * 1024
    finally:
        small.close()
        large.close()


def test_an_app_aggregate_has_the_same_size_for_any_number_of_jobs_and_durations(store):
    """The duration histogram is a dense array allocated with the aggregate: reading an app's
    figures parses the same document whether it ran 2 jobs of one duration or 3000 spread over
    six decades (a map of filled buckets grew with both)."""
    jobs = [{"id": f"j{i}", "owner": "alice", "created": float(i), "state": "SUCCESS", "app": "wide",
             "elapsed": 10 ** (-2 + 6 * i / 3000)} for i in range(3000)]
    jobs += [{"id": f"k{i}", "owner": "alice", "created": float(i), "state": "SUCCESS", "app": "narrow",
              "elapsed": 5.0} for i in range(2)]
    store.insert_many("jobs", jobs[:1500])
    for job in jobs[1500:]:
        store.insert("jobs", job)
    by_name = {a["name"]: a for a in store.totals(totals.APP)}
    wide, narrow = by_name["wide"], by_name["narrow"]
    assert len(wide[totals.RUNS]) == len(narrow[totals.RUNS]) == totals.RUN_BUCKETS
    assert sorted(wide) == sorted(narrow) and sorted(wide["counts"]) == sorted(narrow["counts"])
    assert sum(1 for n in wide[totals.RUNS] if n) > 300 and sum(wide[totals.RUNS]) == 3000
    figures = {a["app"]: a for a in accounting.compute(store, 0.0)["apps"]}
    assert figures["narrow"]["run_time"]["median"] == pytest.approx(5.0, rel=0.02)
    assert figures["wide"]["run_time"]["median"] == pytest.approx(10.0, rel=0.03)


def test_totals_of_the_previous_layout_are_recounted_once(tmp_path, mongomock_store):
    """A store whose totals were built with sparse run|<bucket> counters (format 1) is recounted
    into the dense layout when opened, on both backends."""
    path = tmp_path / "caesar.db"
    sqlite_store = SQLiteStore(path)
    for store in (sqlite_store, mongomock_store):
        store.insert("jobs", {"id": "j1", "owner": "alice", "created": 1.0, "state": "SUCCESS", "app": "sep",
                              "elapsed": 3.0})
    expected = _snapshot(sqlite_store)
    sqlite_store.close()
    old_app = {"id": "app:sep", "kind": "app", "name": "sep", "latest": None,
               "counts": {"jobs": 1, "jobs_by_state|SUCCESS": 1, f"run|{totals.bucket(3.0)}": 1}}
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE totals SET doc = ? WHERE id = 'app:sep'", (json.dumps(old_app),))
        conn.execute("UPDATE totals SET doc = ? WHERE id = 'meta'", (json.dumps({"id": "meta", "built": True}),))
    reopened = SQLiteStore(path)
    try:
        assert _snapshot(reopened) == expected
    finally:
        reopened.close()
    db = mongomock_store.db
    db.totals.replace_one({"_id": "app:sep"}, {k: v for k, v in old_app.items() if k != "id"})
    db.totals.replace_one({"_id": "meta"}, {"kind": "meta", "built": True})
    mongomock_store.ensure_indexes()
    app, = mongomock_store.totals(totals.APP)
    assert app["counts"] == {"jobs": 1, "jobs_by_state|SUCCESS": 1}
    assert app[totals.RUNS][totals.bucket(3.0)] == 1 and sum(app[totals.RUNS]) == 1
