"""Submission: strict validation (400 naming the field or option, nothing stored, nothing
published) and the outbox (stored PENDING first, then `caesar.jobs.submitted`)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from caesar_faas.apps.registry import get_app
from caesar_faas.errors import ApiError, BadRequest
from caesar_faas.events.subjects import JOBS_SUBMITTED
from caesar_faas.jobs import submit as submit_mod
from caesar_faas.jobs.monitor import run_monitor
from tests.fixtures.jobs import IMAGE_APP, LOCAL_APP, JobsEnv


def test_valid_submission_is_stored_then_published(jobs_env: JobsEnv) -> None:
    file_id = jobs_env.add_file("alice", filename="m31.fits")
    view = jobs_env.submit("alice", data_inputs=file_id, job_inputs={"thresh": 7, "minarea": 3}, tag="run-1",
                           timeout=600)
    assert view["state"] == "PENDING" and view["app"] == LOCAL_APP and view["tag"] == "run-1"
    assert view["data_inputs"] == file_id and view["job_inputs"] == {"thresh": 7, "minarea": 3}
    assert view["timeout"] == 600 and view["exit_status"] is None and view["submit_date"].endswith("Z")
    job = jobs_env.job(view["job_id"])
    recorded = jobs_env.store.get("files", file_id)["sha256"]
    assert job["owner"] == "alice" and job["input"] == {"file_id": file_id, "key": f"files/alice/{file_id}",
                                                        "filename": "m31.fits", "sha256": recorded}
    spec = get_app(LOCAL_APP)
    assert set(job["options"]) == set(spec.options)  # defaults filled for the runner
    assert job["options"]["thresh"] == 7.0 and isinstance(job["options"]["thresh"], float)
    jobs_env.tap.barrier(jobs_env.bus)
    events = jobs_env.tap.of(JOBS_SUBMITTED, view["job_id"])
    assert [e["id"] for e in events] == [f"{view['job_id']}-submitted"]
    assert events[0]["data"] == {"job_id": view["job_id"], "owner": "alice", "app": LOCAL_APP}


def test_inputfile_inside_job_inputs_and_empty_options(jobs_env: JobsEnv) -> None:
    file_id = jobs_env.add_file("alice")
    view = jobs_env.submit("alice", job_inputs={"inputfile": file_id})
    job = jobs_env.job(view["job_id"])
    assert job["input"]["file_id"] == file_id and view["data_inputs"] == file_id
    assert "inputfile" not in job["options"]
    spec = get_app(LOCAL_APP)
    assert job["options"] == {name: opt.default for name, opt in spec.options.items()}
    assert job["timeout"] == min(spec.default_timeout, jobs_env.settings.max_job_timeout)
    # the same id twice is fine, two different ids are not
    jobs_env.submit("alice", data_inputs=file_id, job_inputs={"inputfile": file_id})


def _bad_bodies(env: JobsEnv) -> list[tuple[str, Any, str]]:
    """(case, body, the field or option the 400 must name)."""
    ok = env.add_file("alice")
    foreign = env.add_file("bob")
    pending = env.add_file("alice", status="pending")
    invalid = env.add_file("alice", status="invalid")
    base = {"app": LOCAL_APP, "data_inputs": ok}
    cases = [
        ("unknown top-level field", {**base, "priority": 1}, "priority"),
        ("unknown app", {**base, "app": "sextractor"}, "app"),
        ("app missing", {"data_inputs": ok}, "app"),
        ("unknown option", {**base, "job_inputs": {"thresh": 5, "bogus": 1}}, "bogus"),
        ("string for float", {**base, "job_inputs": {"thresh": "5"}}, "thresh"),
        ("bool for int", {**base, "job_inputs": {"minarea": True}}, "minarea"),
        ("float for int", {**base, "job_inputs": {"minarea": 3.0}}, "minarea"),
        ("above max", {**base, "job_inputs": {"minarea": 100001}}, "minarea"),
        ("below min", {**base, "job_inputs": {"thresh": 0.1}}, "thresh"),
        ("not in enum", {**base, "job_inputs": {"filter_kernel": "tophat"}}, "filter_kernel"),
        ("shell text in an enum option", {**base, "job_inputs": {"filter_kernel": "; rm -rf / #"}}, "filter_kernel"),
        ("job_inputs not an object", {**base, "job_inputs": ["thresh", 5]}, "job_inputs"),
        ("input image given as an option", {**base, "job_inputs": {"image": "/etc/passwd"}}, "image"),
        ("no input file", {"app": LOCAL_APP, "job_inputs": {}}, "data_inputs"),
        ("unknown file", {**base, "data_inputs": "00000000-0000-4000-8000-000000000000"}, "data_inputs"),
        ("not an id", {**base, "data_inputs": "../../etc/passwd"}, "data_inputs"),
        ("file id not a string", {**base, "data_inputs": 12}, "data_inputs"),
        ("another user's file", {**base, "data_inputs": foreign}, "data_inputs"),
        ("unknown inputfile", {"app": LOCAL_APP, "job_inputs": {"inputfile": foreign}}, "inputfile"),
        ("two different files", {**base, "job_inputs": {"inputfile": pending}}, "data_inputs"),
        ("file still uploading", {**base, "data_inputs": pending}, "data_inputs"),
        ("invalid file", {**base, "data_inputs": invalid}, "data_inputs"),
        ("timeout zero", {**base, "timeout": 0}, "timeout"),
        ("timeout as a string", {**base, "timeout": "60"}, "timeout"),
        ("timeout as a bool", {**base, "timeout": True}, "timeout"),
        ("timeout as a float", {**base, "timeout": 60.0}, "timeout"),
        ("tag too long", {**base, "tag": "x" * 129}, "tag"),
        ("tag not a string", {**base, "tag": 5}, "tag"),
    ]
    if get_app(IMAGE_APP) is not None:
        cases.append(("app needing its container image", {**base, "app": IMAGE_APP}, "app"))
    return cases


def test_every_bad_submission_is_a_400_naming_the_field_and_leaves_no_trace(jobs_env: JobsEnv) -> None:
    cases = _bad_bodies(jobs_env)
    jobs_env.tap.barrier(jobs_env.bus)
    published_before = len(jobs_env.tap.of(JOBS_SUBMITTED))
    for case, body, field in cases:
        with pytest.raises(BadRequest) as info:
            submit_mod.submit(jobs_env.store, jobs_env.bus, jobs_env.settings, "alice", body)
        err = info.value
        assert err.http_status == 400, case
        assert err.body()["option"] == field, (case, err.body())
        assert err.body()["status"], case
    for body in (None, [], "text", 3):
        with pytest.raises(BadRequest):
            submit_mod.submit(jobs_env.store, jobs_env.bus, jobs_env.settings, "alice", body)
    assert jobs_env.store.count("jobs") == 0
    jobs_env.tap.barrier(jobs_env.bus)
    assert len(jobs_env.tap.of(JOBS_SUBMITTED)) == published_before


def test_foreign_and_missing_files_get_the_same_answer(jobs_env: JobsEnv) -> None:
    foreign = jobs_env.add_file("bob")
    missing = "00000000-0000-4000-8000-000000000000"
    answers = []
    for file_id in (foreign, missing):
        with pytest.raises(BadRequest) as info:
            jobs_env.submit("alice", data_inputs=file_id)
        answers.append(info.value.body())
    assert answers[0]["error"] == answers[1]["error"] == "invalid_file"
    assert answers[0]["status"].replace(foreign, "ID") == answers[1]["status"].replace(missing, "ID")


def test_timeout_above_the_callers_maximum_is_a_quota_refusal(jobs_env: JobsEnv) -> None:
    with pytest.raises(ApiError) as info:
        jobs_env.submit("alice", timeout=jobs_env.settings.max_job_timeout + 1)
    assert info.value.http_status == 413 and info.value.body()["limit"] == "max_job_timeout"
    assert jobs_env.store.count("jobs") == 0


class UnreachableBus:
    """Fault injection for the outbox: every publish fails as with NATS down (the real bus then
    raises after its timeout; this one fails at once to keep the test fast)."""

    def __init__(self) -> None:
        self.calls = 0

    def publish(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        raise TimeoutError("nats unreachable")


def test_outbox_keeps_the_job_when_publishing_fails_and_the_monitor_republishes(jobs_env: JobsEnv) -> None:
    bus = UnreachableBus()
    view = submit_mod.submit(jobs_env.store, bus, jobs_env.settings, "alice",
                             {"app": LOCAL_APP, "data_inputs": jobs_env.add_file("alice")})
    assert bus.calls == 1
    assert view["state"] == "PENDING" and "retried automatically" in view["status"]
    job_id = view["job_id"]
    assert jobs_env.job(job_id)["state"] == "PENDING"
    # Not yet stale: nothing happens. Later than redispatch_after: published again, with a new id.
    summary = run_monitor(jobs_env.store, jobs_env.backend, jobs_env.bus, jobs_env.settings,
                          now=time.time() + 1)
    assert summary["redispatched"] == []
    summary = run_monitor(jobs_env.store, jobs_env.backend, jobs_env.bus, jobs_env.settings,
                          now=time.time() + jobs_env.settings.redispatch_after + 1)
    assert summary["redispatched"] == [job_id]
    jobs_env.tap.barrier(jobs_env.bus)
    assert [e["id"] for e in jobs_env.tap.of(JOBS_SUBMITTED, job_id)] == [f"{job_id}-redispatch-1"]
    # the monitor also filled the free slot directly, so a dead bus never stalls the queue
    assert summary["launched"] == [job_id]
    jobs_env.wait_state(job_id, "STARTED", "RUNNING")
