"""The monitor with real processes: timeouts, lost runners, lost final events, interrupted
launches, stale PENDING jobs, leftovers of aborted jobs and expiry; its work grows with the
active jobs only."""

from __future__ import annotations

import io
import os
import signal
import time
from typing import Any

from caesar_faas.events.subjects import JOBS_SUBMITTED
from caesar_faas.ids import epoch, new_id
from caesar_faas.jobs import control
from caesar_faas.jobs.monitor import TIMEOUT_GRACE, run_monitor
from caesar_faas.jobs.records import new_job
from caesar_faas.store.base import Store
from tests.fixtures.jobs import JobsEnv
from tests.helpers import wait_for


def monitor(env: JobsEnv, **kw: Any) -> dict[str, Any]:
    summary = run_monitor(env.store, env.backend, env.bus, env.settings, storage=env.storage, **kw)
    assert summary["errors"] == []
    return summary


def running_job(env: JobsEnv, owner: str = "alice", **body: Any) -> dict[str, Any]:
    env.act_as_dispatcher()
    job_id = env.submit(owner, **body)["job_id"]
    env.wait_state(job_id, "RUNNING")
    wait_for(lambda: len(env.processes(job_id)) == 2, message="runner and its child")
    return env.job(job_id)


def test_job_over_its_timeout_ends_timed_out_and_stopped(jobs_env: JobsEnv) -> None:
    job = running_job(jobs_env, timeout=1)
    assert monitor(jobs_env)["timed_out"] == []  # inside its time
    # with no grace the real clock passes the deadline within a second or so
    wait_for(lambda: monitor(jobs_env, grace=0)["timed_out"] == [job["id"]], timeout=60, interval=0.2,
             message="timeout")
    done = jobs_env.job(job["id"])
    assert (done["state"], done["error_class"], done["active"]) == ("TIMED-OUT", "timeout", False)
    assert "1 s" in done["status"] and jobs_env.processes(job["id"]) == []
    assert TIMEOUT_GRACE > 0


def test_killed_runner_ends_failure_system_and_its_children_die(jobs_env: JobsEnv) -> None:
    job = running_job(jobs_env)
    os.kill(job["backend_ref"]["pid"], signal.SIGKILL)
    wait_for(lambda: jobs_env.backend.poll(job).state == "GONE", message="runner dead")
    summary = monitor(jobs_env)
    assert summary["lost"] == [job["id"]]
    done = jobs_env.job(job["id"])
    assert (done["state"], done["error_class"], done["active"]) == ("FAILURE", "system", False)
    assert "runner died without a final status" in done["status"]
    assert jobs_env.processes(job["id"]) == []  # the orphaned finder child was stopped too
    assert monitor(jobs_env)["lost"] == []  # safe to repeat


def test_lost_final_event_is_taken_from_the_result_file(jobs_env: JobsEnv) -> None:
    job = running_job(jobs_env)
    jobs_env.release(job["id"], state="SUCCESS", exit_code=0, products=["catalog.csv"], no_event=True)
    wait_for(lambda: jobs_env.backend.poll(job).state == "SUCCESS", message="runner finished")
    assert monitor(jobs_env)["reconciled"] == [job["id"]]
    done = jobs_env.job(job["id"])
    assert (done["state"], done["exit_status"], done["products"], done["active"]) == \
        ("SUCCESS", 0, ["catalog.csv"], False)
    assert done["expires"] > time.time()


def test_interrupted_launch_is_retried_once(jobs_env: JobsEnv) -> None:
    """The dispatcher died between PENDING->STARTED and backend.launch: no process ever ran."""
    job_id = jobs_env.submit("alice")["job_id"]
    then = epoch() - 120  # longer ago than the launch grace and the redispatch period
    jobs_env.store.update("jobs", job_id, {"state": "STARTED", "active": True, "started": then,
                                           "dispatch": {"attempts": 1, "last": then, "redispatches": 0}})
    summary = monitor(jobs_env)
    assert summary["relaunch"] == [job_id] and summary["launched"] == [job_id]
    wait_for(lambda: jobs_env.runs(job_id), message="runner start")
    job = jobs_env.job(job_id)
    assert job["dispatch"]["attempts"] == 2 and job["backend_ref"]["pid"] == jobs_env.runs(job_id)[0]


def test_stale_pending_job_is_published_again_once_per_period(jobs_env: JobsEnv) -> None:
    # both slots busy: the stale job is re-published but stays queued
    busy = [running_job(jobs_env)["id"] for _ in range(2)]
    jobs_env.tap.quiesce()
    waiting = jobs_env.submit("bob")["job_id"]
    later = time.time() + jobs_env.settings.redispatch_after + 1
    summary = monitor(jobs_env, now=later)
    assert summary["redispatched"] == [waiting] and summary["launched"] == []
    assert monitor(jobs_env, now=later + 1)["redispatched"] == []  # not again within the period
    jobs_env.tap.barrier(jobs_env.bus)
    assert [e["id"] for e in jobs_env.tap.of(JOBS_SUBMITTED, waiting)] == \
        [f"{waiting}-submitted", f"{waiting}-redispatch-1"]
    assert jobs_env.job(waiting)["state"] == "PENDING"
    for job_id in busy:
        jobs_env.release(job_id, no_event=True)  # finished, but the events were lost
    wait_for(lambda: all(jobs_env.backend.poll(jobs_env.job(j)).state == "SUCCESS" for j in busy),
             message="runners done")
    summary = monitor(jobs_env, now=later + jobs_env.settings.redispatch_after + 1)
    assert sorted(summary["reconciled"]) == sorted(busy) and summary["launched"] == [waiting]


def test_aborted_job_whose_cancel_event_was_lost_is_stopped(jobs_env: JobsEnv) -> None:
    job = running_job(jobs_env)
    jobs_env.tap.quiesce()  # nobody acts on the cancel event

    class Unreachable:
        def publish(self, *args: Any, **kwargs: Any) -> None:
            raise TimeoutError("nats unreachable")

    control.cancel(jobs_env.store, Unreachable(), "alice", job["id"], settings=jobs_env.settings)
    assert jobs_env.job(job["id"])["active"] and jobs_env.processes(job["id"])
    assert monitor(jobs_env)["stopped"] == [job["id"]]
    assert jobs_env.processes(job["id"]) == [] and not jobs_env.job(job["id"])["active"]


def finished_job(env: JobsEnv, *, expires: float, active: bool = False, owner: str = "alice") -> str:
    job = new_job(job_id=new_id(), owner=owner, app="sep", tag="", options={}, job_inputs={},
                  input_ref={"file_id": new_id(), "key": "k", "filename": "f.fits"}, timeout=60, now=epoch())
    job.update(state="SUCCESS", active=active, finished=epoch(), expires=expires, products=["catalog.csv"])
    env.store.insert("jobs", job)
    for name in ("catalog.csv", "manifest.json"):
        env.storage.put(f"jobs/{owner}/{job['id']}/{name}", io.BytesIO(b"data"), size=4)
    env.workdir(job["id"]).mkdir(parents=True)
    return job["id"]


def test_expired_jobs_lose_products_work_folder_and_record_in_batches(jobs_env: JobsEnv) -> None:
    past = epoch() - 10
    expired = [finished_job(jobs_env, expires=past - n) for n in range(3)]
    kept = finished_job(jobs_env, expires=epoch() + 3600)
    expired_but_active = finished_job(jobs_env, expires=past, active=True)
    other_owner_files = f"jobs/bob/{kept}/x"  # same job id under another owner: untouched
    jobs_env.storage.put(other_owner_files, io.BytesIO(b"x"), size=1)

    first = monitor(jobs_env, batch=2)
    assert len(first["expired"]) == 2
    # an expired job that still holds resources is stopped first, then expires like the others
    assert first["stopped"] == [expired_but_active]
    second = monitor(jobs_env, batch=2)
    assert set(first["expired"] + second["expired"]) == {*expired, expired_but_active}
    assert monitor(jobs_env)["expired"] == []
    for job_id in [*expired, expired_but_active]:
        assert jobs_env.store.get("jobs", job_id) is None
        assert list(jobs_env.storage.list(f"jobs/alice/{job_id}/")) == []
        assert not jobs_env.workdir(job_id).exists()
    assert jobs_env.store.get("jobs", kept) is not None
    assert len(list(jobs_env.storage.list(f"jobs/alice/{kept}/"))) == 2
    assert jobs_env.workdir(kept).exists()
    assert jobs_env.storage.exists(other_owner_files)


class CountingStore:
    """The real store, counting how many records the monitor reads."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.read = 0

    def find(self, *args: Any, **kwargs: Any) -> list:
        found = self._store.find(*args, **kwargs)
        self.read += len(found)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_monitor_reads_active_jobs_not_all_jobs(jobs_env: JobsEnv) -> None:
    for _ in range(200):
        finished_job(jobs_env, expires=epoch() + 3600)
    job = running_job(jobs_env)
    counting = CountingStore(jobs_env.store)
    summary = run_monitor(counting, jobs_env.backend, jobs_env.bus, jobs_env.settings, storage=jobs_env.storage)
    assert summary["errors"] == [] and counting.read == 1  # the one running job
    jobs_env.release(job["id"])
    jobs_env.wait_state(job["id"], "SUCCESS")
