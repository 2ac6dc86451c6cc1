"""What the UWS face adds to the job lifecycle, on the jobs library with a real local backend:
a held job (UWS PENDING) is never dispatched until PHASE=RUN, and a destruction time is kept
when the job ends and enforced by the monitor."""

from __future__ import annotations

import time
from types import SimpleNamespace

from caesar_faas.events.subjects import JOBS_SUBMITTED
from caesar_faas.ids import epoch
from caesar_faas.jobs import submit
from caesar_faas.jobs.control import cancel
from caesar_faas.jobs.dispatch import fill_slots
from caesar_faas.jobs.monitor import run_monitor
from caesar_faas.uws import service
from tests.fixtures.jobs import JobsEnv
from tests.helpers import wait_for

ALICE = service.Caller("alice", False)


def held_job(env: JobsEnv, **kw) -> str:
    body = {"app": "sep", "job_inputs": {}, "data_inputs": env.add_file("alice")}
    return submit.submit(env.store, env.bus, env.settings, "alice", body, hold=True, **kw)["job_id"]


def monitor(env: JobsEnv, now: float) -> dict:
    summary = run_monitor(env.store, env.backend, env.bus, env.settings, now=now, storage=env.storage)
    assert summary["errors"] == []
    return summary


def test_a_held_job_waits_for_phase_run(jobs_env: JobsEnv) -> None:
    jobs_env.act_as_dispatcher()
    job_id = held_job(jobs_env)
    assert fill_slots(jobs_env.store, jobs_env.backend, jobs_env.settings) == []
    summary = monitor(jobs_env, time.time() + jobs_env.settings.redispatch_after + 1)
    assert summary["redispatched"] == [] and summary["launched"] == []
    jobs_env.tap.barrier(jobs_env.bus)
    assert jobs_env.tap.of(JOBS_SUBMITTED, job_id) == []
    assert jobs_env.job(job_id)["state"] == "PENDING"
    # a native job submitted after it is not queued behind it
    other = jobs_env.submit("alice")["job_id"]
    jobs_env.wait_state(other, "STARTED", "RUNNING")
    svc = SimpleNamespace(store=jobs_env.store, bus=jobs_env.bus, settings=jobs_env.settings)
    released = service.run(svc, ALICE, "sep", job_id)
    assert released["hold"] is False
    jobs_env.wait_state(job_id, "STARTED", "RUNNING")
    assert service.run(svc, ALICE, "sep", job_id)["state"] in ("STARTED", "RUNNING")  # idempotent
    for done in (other, job_id):
        jobs_env.release(done)
        jobs_env.wait_state(done, "SUCCESS")


def test_a_destruction_time_is_kept_when_the_job_ends(jobs_env: JobsEnv) -> None:
    destruction = epoch() + 600
    job_id = held_job(jobs_env, destruction=destruction)
    job = jobs_env.job(job_id)
    assert job["destruction"] == job["expires"] == destruction
    cancel(jobs_env.store, jobs_env.bus, "alice", job_id, settings=jobs_env.settings)
    assert jobs_env.job(job_id)["expires"] == destruction  # not now + result lifetime


def test_the_monitor_destroys_a_job_at_its_destruction_time(jobs_env: JobsEnv) -> None:
    now = epoch()
    due = held_job(jobs_env, destruction=now + 30)
    kept = held_job(jobs_env, destruction=now + 3000)
    assert monitor(jobs_env, now + 10)["destroyed"] == []
    summary = monitor(jobs_env, now + 60)
    assert summary["destroyed"] == [due] and summary["expired"] == [due]
    assert jobs_env.store.get("jobs", due) is None and jobs_env.job(kept)["state"] == "PENDING"


def test_a_deleted_job_is_removed_by_the_monitor(jobs_env: JobsEnv) -> None:
    jobs_env.act_as_dispatcher()
    job_id = jobs_env.submit("alice")["job_id"]
    jobs_env.wait_state(job_id, "STARTED", "RUNNING")
    svc = SimpleNamespace(store=jobs_env.store, bus=jobs_env.bus, settings=jobs_env.settings)
    service.delete(svc, ALICE, "sep", job_id)
    job = jobs_env.job(job_id)
    assert job["state"] == "ABORTED" and job["deleted"] is True
    # the cancel event stops the runner; then the expiry pass removes the record
    wait_for(lambda: not jobs_env.job(job_id).get("active"), timeout=30, message="the runner to stop")
    assert monitor(jobs_env, epoch() + 1)["expired"] == [job_id]
    assert jobs_env.store.get("jobs", job_id) is None
