"""Accounting: after a scripted mix of uploads, deletions and jobs, compute() equals the truth
kept by the script itself (an independent running ledger, percentiles from numpy, which the
duration histogram gives within RUN_TIME_TOLERANCE); plus the definitions on a small
hand-checked case and the save/load round trip."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import numpy as np
import pytest

from caesar_faas import accounting
from caesar_faas.ids import new_id

USERS = ["alice", "bob@example.org", "carol.smith"]  # dots and @: fine as owners, not as Mongo keys
APPS = ["sep", "aegean", "pybdsf"]
FINAL = ["SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED"]
RUN_TIME_TOLERANCE = 0.04  # one duration bucket is 3.7% wide (store.totals.BUCKETS_PER_DECADE)


@pytest.fixture(params=["sqlite_store", "mongomock_store"])
def store(request):
    return request.getfixturevalue(request.param)


class Ledger:
    """The truth, accumulated while the script runs (no scanning of the store)."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, int]] = defaultdict(dict)  # owner -> file id -> size (stored)
        self.refused: dict[str, dict[str, int]] = defaultdict(dict)  # invalid files, never deleted here
        self.by_state: dict[str, Counter] = defaultdict(Counter)
        self.by_app: dict[str, Counter] = defaultdict(Counter)
        self.cpu: Counter = Counter()
        self.wall: Counter = Counter()
        self.last: dict[str, float] = {}
        self.app_states: dict[str, Counter] = defaultdict(Counter)
        self.app_runs: dict[str, list[float]] = defaultdict(list)

    def touch(self, owner: str, ts: float) -> None:
        self.last[owner] = max(self.last.get(owner, ts), ts)


def run_script(store, seed: int = 7, steps: int = 300) -> Ledger:
    rnd = random.Random(seed)
    truth = Ledger()
    clock = 1_700_000_000.0
    running: list[dict] = []
    for _ in range(steps):
        clock += rnd.uniform(1, 100)
        owner = rnd.choice(USERS)
        action = rnd.random()
        if action < 0.35:  # upload
            size = rnd.randint(1, 10_000_000)
            status = rnd.choice(["ready", "ready", "ready", "pending", "invalid"])
            record = {"id": new_id(), "owner": owner, "created": clock, "status": status, "size": size}
            store.insert("files", record)
            truth.touch(owner, clock)
            if status != "invalid":
                truth.files[owner][record["id"]] = size
            else:  # refused files count too, until the monitor removes them (issue 18)
                truth.refused[owner][record["id"]] = size
        elif action < 0.45 and truth.files[owner]:  # delete one of the owner's files
            file_id = rnd.choice(sorted(truth.files[owner]))
            assert store.delete("files", file_id)
            del truth.files[owner][file_id]
        elif action < 0.75:  # submit
            app = rnd.choice(APPS)
            job = {"id": new_id(), "owner": owner, "created": clock, "state": "PENDING", "app": app}
            store.insert("jobs", job)
            truth.touch(owner, clock)
            running.append(job)
        elif running:  # a job moves on: start, or finish
            job = running.pop(rnd.randrange(len(running)))
            if "started" not in job and rnd.random() < 0.6:
                store.update("jobs", job["id"], {"state": "RUNNING", "started": clock}, expect={"state": "PENDING"})
                job["started"] = clock
                truth.touch(job["owner"], clock)
                running.append(job)
                continue
            state = rnd.choice(FINAL) if "started" in job else "ABORTED"
            changes: dict = {"state": state, "finished": clock}
            if "started" in job:
                elapsed = round(clock - job["started"], 3)
                changes["elapsed"] = elapsed
                truth.wall[job["owner"]] += elapsed
                if rnd.random() < 0.8:  # the runner does not always report CPU time
                    changes["cpu_seconds"] = cpu = round(elapsed * rnd.uniform(0.1, 1.9), 3)
                    truth.cpu[job["owner"]] += cpu
                if state == "SUCCESS":
                    truth.app_runs[job["app"]].append(elapsed)
            store.update("jobs", job["id"], changes, expect={"state": {"in": ["PENDING", "RUNNING"]}})
            truth.touch(job["owner"], clock)
    # Whatever is still in flight keeps its current state.
    for job in store.find("jobs"):
        truth.by_state[job["owner"]][job["state"]] += 1
        truth.by_app[job["owner"]][job["app"]] += 1
        truth.app_states[job["app"]][job["state"]] += 1
    return truth


def test_scripted_mix_matches_the_truth(store):
    truth = run_script(store)
    snapshot = accounting.compute(store, now=2e9)
    users = {entry["user"]: entry for entry in snapshot["users"]}
    assert set(users) == set(USERS)
    for owner in USERS:
        figures = users[owner]
        assert figures["files"] == len(truth.files[owner]) + len(truth.refused[owner])
        assert figures["bytes"] == sum(truth.files[owner].values()) + sum(truth.refused[owner].values())
        assert figures["jobs_by_state"] == dict(truth.by_state[owner])
        assert figures["jobs_by_app"] == dict(truth.by_app[owner])
        assert figures["jobs"] == sum(truth.by_state[owner].values())
        assert figures["cpu_seconds"] == pytest.approx(truth.cpu[owner])
        assert figures["wall_seconds"] == pytest.approx(truth.wall[owner])
        assert figures["last_activity"] == truth.last[owner]
    apps = {entry["app"]: entry for entry in snapshot["apps"]}
    assert set(apps) == set(truth.app_states)
    for app, states in truth.app_states.items():
        figures = apps[app]
        finished = states["SUCCESS"] + states["FAILURE"] + states["TIMED-OUT"]
        assert figures["jobs"] == sum(states.values())
        assert figures["jobs_by_state"] == dict(states)
        assert figures["success_rate"] == pytest.approx(states["SUCCESS"] / finished)
        runs = truth.app_runs[app]
        assert figures["run_time"]["count"] == len(runs) == states["SUCCESS"]
        assert figures["run_time"]["median"] == pytest.approx(float(np.median(runs)), rel=RUN_TIME_TOLERANCE)
        assert figures["run_time"]["p95"] == pytest.approx(float(np.percentile(runs, 95)), rel=RUN_TIME_TOLERANCE)
    assert snapshot["totals"]["jobs"] == store.count("jobs")
    assert snapshot["totals"]["bytes"] == (sum(sum(f.values()) for f in truth.files.values())
                                           + sum(sum(f.values()) for f in truth.refused.values()))
    # The script exercised every kind of record.
    every_state = Counter()
    for states in truth.app_states.values():
        every_state.update(states)
    assert all(every_state[s] for s in ["PENDING", "RUNNING", *FINAL])


def test_one_users_figures_only(store):
    run_script(store, seed=11, steps=120)
    everyone = {entry["user"]: entry for entry in accounting.compute(store, now=2e9)["users"]}
    mine = accounting.compute(store, now=2e9, owner="bob@example.org")
    assert [entry["user"] for entry in mine["users"]] == ["bob@example.org"]
    assert mine["users"][0] == everyone["bob@example.org"]
    assert accounting.for_user(mine, "bob@example.org") == everyone["bob@example.org"]


def test_definitions_on_a_small_case(store):
    jobs = [
        ("alice", "sep", "SUCCESS", {"elapsed": 10.0, "cpu_seconds": 8.0, "started": 100.0, "finished": 110.0}),
        ("alice", "sep", "SUCCESS", {"elapsed": 20.0, "started": "1970-01-01T00:02:00Z", "finished": 140.0}),
        ("alice", "sep", "SUCCESS", {"elapsed": 30.0}),
        ("alice", "sep", "SUCCESS", {"elapsed": 40.0}),
        ("alice", "sep", "FAILURE", {"elapsed": 1.0, "cpu_seconds": 0.5}),
        ("alice", "sep", "ABORTED", {}),  # cancelled while waiting: no time, not a failure of the app
        ("bob", "aegean", "TIMED-OUT", {"started": 200.0, "finished": "1970-01-01T00:05:00.000Z"}),  # no elapsed
        ("bob", "aegean", "RUNNING", {"started": 400.0, "cpu_seconds": 3.0}),  # unfinished: no wall time yet
    ]
    for n, (owner, app, state, extra) in enumerate(jobs):
        store.insert("jobs", {"id": new_id(), "owner": owner, "created": float(n), "state": state, "app": app,
                              **extra})
    store.insert("files", {"id": new_id(), "owner": "carol", "created": 50.0, "status": "ready", "size": 7})
    snapshot = accounting.compute(store, now=1000.0)
    alice, bob, carol = snapshot["users"]
    assert alice["wall_seconds"] == 101.0 and alice["cpu_seconds"] == 8.5
    assert alice["last_activity"] == 140.0
    assert alice["jobs_by_state"] == {"SUCCESS": 4, "FAILURE": 1, "ABORTED": 1}
    assert bob["wall_seconds"] == 100.0 and bob["cpu_seconds"] == 3.0 and bob["last_activity"] == 400.0
    assert carol == {**carol, "files": 1, "bytes": 7, "jobs": 0, "last_activity": 50.0}
    sep, aegean = snapshot["apps"][1], snapshot["apps"][0]
    assert sep["success_rate"] == 0.8  # 4 of 5: ABORTED does not count
    assert sep["run_time"] == {"count": 4, "median": pytest.approx(25.0, rel=RUN_TIME_TOLERANCE),
                               "p95": pytest.approx(38.5, rel=RUN_TIME_TOLERANCE)}
    assert aegean["success_rate"] == 0.0 and aegean["run_time"] == {"count": 0, "median": None, "p95": None}
    assert snapshot["generated"] == 1000.0


def test_empty_store(store):
    assert accounting.compute(store, now=5.0) == {
        "generated": 5.0, "users": [], "apps": [],
        "totals": {"users": 0, "files": 0, "bytes": 0, "jobs": 0, "cpu_seconds": 0, "wall_seconds": 0}}
    assert accounting.load(store) is None
    assert accounting.for_user(None, "alice")["files"] == 0


def test_save_and_load_round_trip(store):
    run_script(store, seed=3, steps=80)
    snapshot = accounting.compute(store, now=1234.5)
    accounting.save(store, snapshot)
    assert accounting.load(store) == snapshot
    accounting.save(store, accounting.compute(store, now=2000.0))  # the next run replaces it
    assert accounting.load(store)["generated"] == 2000.0
    assert store.count("stats") == 1
