"""Status, list and cancel as users call them: owner scoping, 404 for foreign jobs, cancel of a
running job leaves no process, 409 for a finished job, idempotent cancel."""

from __future__ import annotations

import time

import pytest

from caesar_faas.backends.local import group_members
from caesar_faas.errors import BadRequest, Conflict, NotFound
from caesar_faas.events.subjects import JOBS_CANCEL
from caesar_faas.jobs import control, dispatch
from tests.fixtures.jobs import JobsEnv
from tests.helpers import wait_for


def test_cancel_running_job_aborts_and_leaves_no_process(jobs_env: JobsEnv) -> None:
    jobs_env.act_as_dispatcher()
    job_id = jobs_env.submit("alice")["job_id"]
    jobs_env.wait_state(job_id, "RUNNING")
    wait_for(lambda: len(jobs_env.processes(job_id)) == 2, message="runner and its child")
    pgid = jobs_env.job(job_id)["backend_ref"]["pgid"]
    t0 = time.monotonic()
    view = control.cancel(jobs_env.store, jobs_env.bus, "alice", job_id, settings=jobs_env.settings)
    assert view["state"] == "ABORTED" and view["finished"] is not None
    wait_for(lambda: not jobs_env.job(job_id)["active"] and not jobs_env.processes(job_id), timeout=60,
             message="processes stopped")
    assert time.monotonic() - t0 < 5
    assert pgid is not None and group_members(pgid) == []
    # idempotent: cancelling again answers the same state and changes nothing
    again = control.cancel(jobs_env.store, jobs_env.bus, "alice", job_id, settings=jobs_env.settings)
    assert again["state"] == "ABORTED" and again["finished"] == view["finished"]
    jobs_env.tap.barrier(jobs_env.bus)
    assert {e["id"] for e in jobs_env.tap.of(JOBS_CANCEL, job_id)} == {f"{job_id}-cancel"}
    job = jobs_env.job(job_id)
    assert job["state"] == "ABORTED" and job["expires"] > job["finished"]
    # a late runner event cannot revive it
    dispatch.on_status(jobs_env.store, jobs_env.backend, jobs_env.bus, jobs_env.settings,
                       {"job_id": job_id, "phase": "finished", "state": "SUCCESS", "exit_code": 0})
    assert jobs_env.job(job_id)["state"] == "ABORTED"


def test_cancel_pending_job_means_it_never_starts(jobs_env: JobsEnv) -> None:
    job_id = jobs_env.submit("alice")["job_id"]
    view = control.cancel(jobs_env.store, jobs_env.bus, "alice", job_id, settings=jobs_env.settings)
    assert view["state"] == "ABORTED"
    result = dispatch.on_submitted(jobs_env.store, jobs_env.backend, jobs_env.bus, jobs_env.settings, job_id)
    assert result["action"] == "ignored"
    assert not jobs_env.workdir(job_id).exists() and jobs_env.job(job_id)["active"] is False


def test_cancelling_a_finished_job_is_a_conflict(jobs_env: JobsEnv) -> None:
    jobs_env.act_as_dispatcher()
    job_id = jobs_env.submit("alice")["job_id"]
    jobs_env.wait_state(job_id, "RUNNING")
    jobs_env.release(job_id, state="FAILURE", exit_code=1, error_class="usage")
    jobs_env.wait_state(job_id, "FAILURE")
    with pytest.raises(Conflict) as info:
        control.cancel(jobs_env.store, jobs_env.bus, "alice", job_id, settings=jobs_env.settings)
    assert info.value.http_status == 409 and "FAILURE" in info.value.message
    assert jobs_env.job(job_id)["state"] == "FAILURE"


def test_another_users_job_is_answered_like_a_missing_one(jobs_env: JobsEnv) -> None:
    job_id = jobs_env.submit("alice")["job_id"]
    missing = "00000000-0000-4000-8000-000000000000"
    texts = []
    for target in (job_id, missing):
        for call in (lambda t: control.get_status(jobs_env.store, "bob", t),
                     lambda t: control.cancel(jobs_env.store, jobs_env.bus, "bob", t, settings=jobs_env.settings)):
            with pytest.raises(NotFound) as info:
                call(target)
            texts.append(info.value.body()["status"].replace(target, "ID"))
    assert len(set(texts)) == 1
    with pytest.raises(NotFound):
        control.get_status(jobs_env.store, "alice", "not-an-id")
    assert jobs_env.job(job_id)["state"] == "PENDING"  # bob's cancel changed nothing
    assert control.get_status(jobs_env.store, "root", job_id, admin=True)["job_id"] == job_id
    view = control.get_status(jobs_env.store, "alice", job_id)
    assert {"job_id", "submit_date", "app", "job_inputs", "data_inputs", "tag", "state", "status",
            "exit_status", "elapsed_time", "progress", "started", "finished", "error_class",
            "timeout"} <= set(view)
    assert "backend_ref" not in view and "input" not in view
    assert control.cancel(jobs_env.store, jobs_env.bus, "root", job_id, admin=True,
                          settings=jobs_env.settings)["state"] == "ABORTED"


def test_list_jobs_filters_and_pages(jobs_env: JobsEnv) -> None:
    mine = [jobs_env.submit("alice", tag="a" if n % 2 else "b")["job_id"] for n in range(5)]
    jobs_env.submit("bob", tag="a")
    control.cancel(jobs_env.store, jobs_env.bus, "alice", mine[0], settings=jobs_env.settings)

    def ids(**kw: object) -> list[str]:
        out, cursor = [], None
        while True:
            page = control.list_jobs(jobs_env.store, "alice", limit=2, cursor=cursor, **kw)
            assert len(page["jobs"]) <= 2
            out += [j["job_id"] for j in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return out

    assert ids() == list(reversed(mine))  # newest first, only alice's
    assert ids(state="ABORTED") == [mine[0]]
    assert set(ids(state="PENDING")) == set(mine[1:])
    assert set(ids(tag="a")) == {mine[1], mine[3]}
    assert ids(app="pybdsf") == []
    assert len(control.list_jobs(jobs_env.store, "root", admin=True)["jobs"]) == 6
    for bad in ({"state": "DONE"}, {"limit": 0}, {"limit": 501}, {"limit": "5"}, {"cursor": "garbage"}):
        with pytest.raises(BadRequest):
            control.list_jobs(jobs_env.store, "alice", **bad)
