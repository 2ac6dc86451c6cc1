"""The dispatcher library with real processes, the real store and real NATS: launch exactly
once, fair admission under the concurrency limit, runner status applied by compare-and-set."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from caesar_faas.backends.local import proc_info
from caesar_faas.events.subjects import JOBS_STATUS, JOBS_SUBMITTED
from caesar_faas.ids import epoch, new_id
from caesar_faas.jobs import dispatch
from caesar_faas.jobs.monitor import run_monitor
from caesar_faas.jobs.records import new_job
from caesar_faas.jobs.states import ORDER, TERMINAL, rank
from tests.fixtures.jobs import JobsEnv
from tests.helpers import wait_for


def on_status(env: JobsEnv, job_id: str, phase: str, **data: Any) -> dict:
    return dispatch.on_status(env.store, env.backend, env.bus, env.settings,
                              {"job_id": job_id, "owner": "alice", "phase": phase, **data})


def stored_job(env: JobsEnv, state: str = "STARTED", app: str = "sep", owner: str = "alice") -> str:
    """A job record put straight into the store (no process), for status-event tests."""
    job = new_job(job_id=new_id(), owner=owner, app=app, tag="", options={}, job_inputs={},
                  input_ref={"file_id": new_id(), "key": "k", "filename": "f.fits"}, timeout=60, now=epoch())
    job.update(state=state, active=state != "PENDING", started=epoch() if state != "PENDING" else None)
    env.store.insert("jobs", job)
    return job["id"]


def test_submitted_job_runs_through_every_state_to_success(jobs_env: JobsEnv) -> None:
    jobs_env.act_as_dispatcher()
    seen: list[str] = []
    view = jobs_env.submit("alice", job_inputs={"thresh": 6})
    job_id = view["job_id"]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            state = jobs_env.job(job_id)["state"]
            if not seen or seen[-1] != state:
                seen.append(state)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        running = wait_for(lambda: (j := jobs_env.job(job_id))["progress"] == 10 and j, message="progress 10")
        assert running["state"] == "RUNNING" and running["active"] and running["backend_ref"]["pid"]
        jobs_env.release(job_id, state="SUCCESS", exit_code=0, products=["catalog.csv", "manifest.json"])
        done = wait_for(lambda: (j := jobs_env.job(job_id))["state"] == "SUCCESS" and not j["active"] and j,
                        message="success")
    finally:
        stop.set()
        sampler.join()
    assert [rank(s) for s in seen] == sorted(rank(s) for s in seen)  # never backwards
    assert seen[0] in ORDER and seen[-1] == "SUCCESS" and "RUNNING" in seen
    assert done["exit_status"] == 0 and done["progress"] == 100 and done["error_class"] is None
    assert done["products"] == ["catalog.csv", "manifest.json"] and done["elapsed"] > 0
    assert done["expires"] == done["finished"] + jobs_env.settings.result_lifetime
    assert jobs_env.processes(job_id) == []  # the slot is freed only once the runner is gone
    phases = [e["data"]["phase"] for e in jobs_env.tap.of(JOBS_STATUS, job_id)]
    assert phases == ["started", "progress", "finished"]


def test_the_same_submitted_event_three_times_launches_once(jobs_env: JobsEnv) -> None:
    view = jobs_env.submit("alice")
    job_id = view["job_id"]
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(dispatch.on_submitted(
        jobs_env.store, jobs_env.backend, jobs_env.bus, jobs_env.settings, job_id))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["action"] for r in results) == ["ignored", "ignored", "launched"]
    # and once more, late, through the bus as a redelivery would come
    jobs_env.act_as_dispatcher()
    for n in range(3):
        jobs_env.bus.publish(JOBS_SUBMITTED, {"job_id": job_id, "owner": "alice", "app": "sep"},
                             about=job_id, event_id=f"{job_id}-again-{n}")
    jobs_env.tap.barrier(jobs_env.bus)
    wait_for(lambda: jobs_env.runs(job_id), message="runner start")
    wait_for(lambda: jobs_env.job(job_id)["state"] == "RUNNING", message="running")
    job = jobs_env.job(job_id)
    assert job["dispatch"]["attempts"] == 1
    assert len(jobs_env.runs(job_id)) == 1


def test_concurrency_limit_and_fair_turns_across_owners(jobs_env: JobsEnv) -> None:
    jobs_env.act_as_dispatcher()
    alice = [jobs_env.submit("alice")["job_id"] for _ in range(3)]
    for job_id in alice[:2]:
        jobs_env.wait_state(job_id, "RUNNING")
    bob = [jobs_env.submit("bob")["job_id"] for _ in range(2)]
    jobs_env.tap.barrier(jobs_env.bus)
    wait_for(lambda: jobs_env.job(bob[1])["status"].startswith("Queued"), message="bob queued")

    peak = {"active": 0, "runners": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak["active"] = max(peak["active"], jobs_env.store.count("jobs", {"active": True}))
            # runner pids first, then one quick liveness pass (a snapshot within microseconds,
            # far shorter than the time between one runner's end and the next one's start)
            pids = [pid for job_id in alice + bob for pid in jobs_env.runs(job_id)]
            live = [pid for pid in pids if (info := proc_info(pid)) is not None and info.live]
            peak["runners"] = max(peak["runners"], len(live))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert {jobs_env.job(j)["state"] for j in [alice[2], *bob]} == {"PENDING"}
        # alice holds both slots: the next free one goes to bob, although alice asked first
        jobs_env.release(alice[0])
        jobs_env.wait_state(bob[0], "RUNNING")
        assert jobs_env.job(alice[2])["state"] == "PENDING"
        # now alice has none running and bob one: alice's turn
        jobs_env.release(alice[1])
        jobs_env.wait_state(alice[2], "RUNNING")
        assert jobs_env.job(bob[1])["state"] == "PENDING"
        jobs_env.release(bob[0])
        jobs_env.wait_state(bob[1], "RUNNING")
        for job_id in (alice[2], bob[1]):
            jobs_env.release(job_id)
        for job_id in alice + bob:
            jobs_env.wait_state(job_id, "SUCCESS")
        wait_for(lambda: jobs_env.store.count("jobs", {"active": True}) == 0, message="all slots free")
    finally:
        stop.set()
        watcher.join()
    assert peak == {"active": 2, "runners": 2}
    assert all(len(jobs_env.runs(j)) == 1 for j in alice + bob)


def test_status_events_apply_by_compare_and_set(jobs_env: JobsEnv) -> None:
    job_id = stored_job(jobs_env, "STARTED")
    assert on_status(jobs_env, job_id, "progress", progress=30)["action"] == "applied"  # before "started"
    job = jobs_env.job(job_id)
    assert (job["state"], job["progress"]) == ("RUNNING", 30)
    for phase, progress in (("started", 0), ("progress", 20), ("progress", 30)):  # late or duplicate
        assert on_status(jobs_env, job_id, phase, progress=progress)["action"] == "ignored"
    assert jobs_env.job(job_id)["progress"] == 30
    assert on_status(jobs_env, job_id, "progress", progress=55, message="fitting")["action"] == "applied"
    assert jobs_env.job(job_id)["status"] == "fitting"
    finished = {"state": "SUCCESS", "exit_code": 0, "elapsed": 4.5, "products": ["catalog.csv"]}
    assert on_status(jobs_env, job_id, "finished", **finished)["action"] == "applied"
    final = jobs_env.job(job_id)
    for phase, data in (("finished", {"state": "FAILURE", "exit_code": 1}), ("progress", {"progress": 99}),
                        ("started", {}), ("finished", finished)):
        assert on_status(jobs_env, job_id, phase, **data)["action"] == "ignored"
    assert jobs_env.job(job_id) == final
    assert (final["state"], final["exit_status"], final["elapsed"], final["progress"]) == ("SUCCESS", 0, 4.5, 100)
    assert final["active"] is False


def test_concurrent_progress_events_keep_the_maximum(jobs_env: JobsEnv) -> None:
    job_id = stored_job(jobs_env, "STARTED")
    values = list(range(1, 61))
    random.Random(7).shuffle(values)
    threads = [threading.Thread(target=on_status, args=(jobs_env, job_id, "progress"), kwargs={"progress": v})
               for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert jobs_env.job(job_id)["progress"] == 60


def test_first_event_may_be_the_final_one_and_bad_values_are_normalised(jobs_env: JobsEnv) -> None:
    fast = stored_job(jobs_env, "STARTED")
    on_status(jobs_env, fast, "finished", state="TIMED-OUT", exit_code=124)
    job = jobs_env.job(fast)
    assert (job["state"], job["error_class"], job["exit_status"]) == ("TIMED-OUT", "timeout", 124)
    odd = stored_job(jobs_env, "RUNNING")
    on_status(jobs_env, odd, "finished", state="DONE?", exit_code="1", products=["a.csv", 3])
    job = jobs_env.job(odd)
    assert (job["state"], job["error_class"], job["exit_status"], job["products"]) == \
        ("FAILURE", "system", None, ["a.csv"])
    assert on_status(jobs_env, new_id(), "progress", progress=5)["action"] == "ignored"  # unknown job
    assert dispatch.on_status(jobs_env.store, jobs_env.backend, jobs_env.bus, jobs_env.settings,
                              {"phase": "progress"})["action"] == "ignored"


def test_usage_launch_error_is_a_final_failure(jobs_env: JobsEnv) -> None:
    job_id = stored_job(jobs_env, "PENDING", app="no-such-app")
    result = dispatch.on_submitted(jobs_env.store, jobs_env.backend, jobs_env.bus, jobs_env.settings, job_id)
    job = jobs_env.job(job_id)
    assert result["action"] == "ignored"  # not launched, and no longer waiting
    assert (job["state"], job["error_class"], job["active"]) == ("FAILURE", "usage", False)
    assert "unknown app" in job["status"] and job["finished"] and job["expires"]
    assert not jobs_env.workdir(job_id).exists()


def test_system_launch_errors_are_retried_then_fail(jobs_env: JobsEnv) -> None:
    job_id = jobs_env.submit("alice")["job_id"]
    jobs_env.settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    jobs_env.workdir(job_id).write_text("a file where the work folder should be")  # mkdir fails
    dispatch.on_submitted(jobs_env.store, jobs_env.backend, jobs_env.bus, jobs_env.settings, job_id)
    job = jobs_env.job(job_id)
    assert (job["state"], job["active"], job["dispatch"]["attempts"]) == ("PENDING", False, 1)
    assert "retried" in job["status"]
    now = time.time()
    for attempt in range(2, dispatch.MAX_LAUNCH_ATTEMPTS + 1):
        now += jobs_env.settings.redispatch_after + 1
        run_monitor(jobs_env.store, jobs_env.backend, jobs_env.bus, jobs_env.settings, now=now)
        assert jobs_env.job(job_id)["dispatch"]["attempts"] == attempt
    job = jobs_env.job(job_id)
    assert (job["state"], job["error_class"]) == ("FAILURE", "system")
    assert job["state"] in TERMINAL and not job["active"]
