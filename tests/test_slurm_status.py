"""Slurm job states -> PollResult (backends/slurm/status.py), and reading v0.0.38 answers as
slurmrestd 22.05 writes them: pure, no cluster (the real cluster's answers are in
tests/test_slurm_backend.py)."""

from __future__ import annotations

import dataclasses

import pytest

from caesar_faas.backends.slurm.api import V0038, SlurmJob
from caesar_faas.backends.slurm.status import classify

BASE = SlurmJob(slurm_id=7, name="caesar-j", comment="j", user="caesar", partition="p", state="RUNNING",
                reason="None", exit_code=0, signal=None, start_time=1000.0, end_time=1100.0)


def job(state: str, **changes: object) -> SlurmJob:
    return dataclasses.replace(BASE, state=state, **changes)


@pytest.mark.parametrize("state", ["PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD"])
def test_queued_states_are_pending(state: str) -> None:
    assert classify(job(state)).state == "PENDING"


@pytest.mark.parametrize("state", ["RUNNING", "COMPLETING", "SUSPENDED", "STOPPED"])
def test_busy_states_are_running(state: str) -> None:
    assert classify(job(state)).state == "RUNNING"


def test_completed_is_success_with_elapsed() -> None:
    result = classify(job("COMPLETED"))
    assert (result.state, result.exit_code, result.error_class) == ("SUCCESS", 0, None)
    assert result.details["elapsed"] == 100.0 and result.details["slurm_job_id"] == 7


@pytest.mark.parametrize(("code", "error_class"), [(1, "usage"), (2, "usage"), (3, "system"), (70, "system")])
def test_failed_keeps_the_exit_code_and_classes_it_like_the_runner(code: int, error_class: str) -> None:
    result = classify(job("FAILED", exit_code=code, reason="NonZeroExitCode"))
    assert (result.state, result.exit_code, result.error_class) == ("FAILURE", code, error_class)
    assert str(code) in result.message


def test_failed_by_a_signal_is_a_system_failure() -> None:
    result = classify(job("FAILED", exit_code=137, signal=9))
    assert (result.state, result.exit_code, result.error_class) == ("FAILURE", 137, "system")
    assert "signal 9" in result.message


@pytest.mark.parametrize("state", ["TIMEOUT", "DEADLINE"])
def test_time_limits_are_timed_out(state: str) -> None:
    result = classify(job(state, exit_code=143))
    assert (result.state, result.error_class) == ("TIMED-OUT", "timeout")


def test_cancelled_is_aborted() -> None:
    assert classify(job("CANCELLED", exit_code=143, signal=15)).state == "ABORTED"


@pytest.mark.parametrize("state", ["NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "PREEMPTED"])
def test_infrastructure_ends_are_system_failures(state: str) -> None:
    result = classify(job(state))
    assert (result.state, result.error_class) == ("FAILURE", "system") and state in result.message


def test_a_state_nobody_knows_changes_nothing() -> None:
    assert classify(job("SOMETHING_NEW")) is None


def test_v0038_answers_are_read_like_slurmrestd_writes_them() -> None:
    api = V0038()
    body = {"meta": {}, "errors": [], "jobs": [
        {"job_id": 12, "name": "caesar-j", "comment": "j", "user_name": "root", "partition": "caesar",
         "job_state": "FAILED", "state_reason": "NonZeroExitCode", "exit_code": 768,
         "start_time": 1796118290, "end_time": 1796118291},
        {"job_id": 13, "name": "x", "job_state": "CANCELLED", "exit_code": 15, "start_time": 0, "end_time": 0},
        {"name": "no id"}]}
    first, second = api.jobs(body)
    assert (first.slurm_id, first.state, first.exit_code, first.signal) == (12, "FAILED", 3, None)
    assert (first.user, first.partition, first.reason) == ("root", "caesar", "NonZeroExitCode")
    assert (second.exit_code, second.signal, second.start_time) == (143, 15, None)


def test_v0038_errors_have_two_spellings_of_their_code() -> None:
    api = V0038()
    body = {"errors": [{"description": "Unable to find JobId=9", "error_number": 2017, "error": "Invalid job id",
                        "source": "slurm_load_job"},
                       {"error_code": 2042, "error": "Job is in held state"}, "junk"]}
    errors = api.errors(body)
    assert [e.number for e in errors] == [2017, 2042]
    assert "Invalid job id" in errors[0].message and "Unable to find" in errors[0].message
    assert api.submitted_id({"job_id": 5, "errors": [{"error_code": 2042}]}) == 5
    assert api.submitted_id({"errors": []}) is None and api.submitted_id({"job_id": True}) is None
