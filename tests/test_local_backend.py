"""LocalBackend with real processes (tests/fixtures/fake_runner.py follows the runner contract):
launch is idempotent, poll tells running / finished / lost apart, cancel leaves no process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from caesar_faas.apps.registry import get_app
from caesar_faas.backends.base import LaunchError
from caesar_faas.backends.local import LocalBackend, group_members, proc_info
from caesar_faas.ids import epoch, new_id
from caesar_faas.runner.contract import RESULT_FILE
from tests.fixtures.jobs import FAKE_RUNNER, IMAGE_APP, LOCAL_APP, JobsEnv
from tests.helpers import wait_for


def make_job(owner: str = "alice", app: str = LOCAL_APP, timeout: int = 60) -> dict:
    """A job record as the dispatcher hands it to a backend (no store needed here)."""
    job_id = new_id()
    return {"id": job_id, "owner": owner, "app": app, "created": epoch(), "timeout": timeout,
            "options": {"thresh": 5.0},
            "input": {"file_id": new_id(), "key": f"files/{owner}/x", "filename": "image.fits"},
            "state": "STARTED", "backend_ref": None}


def started(env: JobsEnv, job: dict) -> dict:
    ref = env.backend.launch(job)
    wait_for(lambda: env.runs(job["id"]) and (env.workdir(job["id"]) / "child.pid").exists(),
             message="fake runner start")
    return ref


def test_launch_is_idempotent_even_when_concurrent(jobs_env: JobsEnv) -> None:
    job = make_job()
    refs: list[dict] = []
    threads = [threading.Thread(target=lambda: refs.append(jobs_env.backend.launch(job))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: jobs_env.runs(job["id"]), message="runner start")
    assert len({r["pid"] for r in refs}) == 1
    ref = refs[0]
    assert ref["pgid"] == ref["pid"] and ref["start_ticks"] == proc_info(ref["pid"]).start_ticks
    assert jobs_env.backend.poll(job).state == "RUNNING"

    jobs_env.release(job["id"], state="SUCCESS", exit_code=0, products=["catalog.csv"])
    result = wait_for(lambda: (r := jobs_env.backend.poll(job)).state != "RUNNING" and r, message="finish")
    assert result.state == "SUCCESS" and result.exit_code == 0
    assert result.details["products"] == ["catalog.csv"]
    # A finished runner (result.json present) is never started again.
    assert jobs_env.backend.launch(job)["pid"] == ref["pid"]
    assert jobs_env.runs(job["id"]) == [ref["pid"]]
    # The reaper thread collected the child: no zombie remains under this test process.
    wait_for(lambda: proc_info(ref["pid"]) is None, message="runner reaped")


def test_runner_gets_the_contract_environment_and_nothing_secret(jobs_env: JobsEnv,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAESAR_JWT_SECRET", "do-not-leak")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "storage-credential-for-s3")
    job = make_job()
    started(jobs_env, job)
    names = json.loads((jobs_env.workdir(job["id"]) / "env.json").read_text())
    assert "CAESAR_JWT_SECRET" not in names
    assert {"CAESAR_JOB", "CAESAR_WORKDIR", "CAESAR_NATS_URL", "CAESAR_STORAGE_URL", "OPENBLAS_NUM_THREADS",
            "MPLBACKEND", "PYTHONPATH", "PATH", "AWS_ACCESS_KEY_ID", "HOME", "TMPDIR"} <= set(names)
    assert (jobs_env.workdir(job["id"]) / "tmp").is_dir()
    jobs_env.backend.cancel(job)


def test_cancel_stops_the_whole_process_group(jobs_env: JobsEnv) -> None:
    job = make_job()
    ref = started(jobs_env, job)
    child = int((jobs_env.workdir(job["id"]) / "child.pid").read_text())
    assert {ref["pid"], child} <= set(jobs_env.processes(job["id"]))
    t0 = time.monotonic()
    jobs_env.backend.cancel(job)
    assert time.monotonic() - t0 < 5
    assert jobs_env.processes(job["id"]) == []
    assert group_members(ref["pgid"]) == []
    # no result.json: the job is lost for poll, and a second cancel is a no-op
    assert jobs_env.backend.poll(job).state == "GONE"
    jobs_env.backend.cancel(job)


def test_cancel_escalates_to_sigkill(jobs_env: JobsEnv) -> None:
    job = make_job()
    jobs_env.workdir(job["id"]).mkdir(parents=True)
    (jobs_env.workdir(job["id"]) / "plan.json").write_text(json.dumps({"ignore_term": True}))
    ref = started(jobs_env, job)
    t0 = time.monotonic()
    jobs_env.backend.cancel(job)
    took = time.monotonic() - t0
    assert 2.5 < took < 5  # waited for SIGTERM in vain, then SIGKILL
    assert group_members(ref["pgid"]) == [] and jobs_env.processes(job["id"]) == []


def test_killed_runner_is_gone_and_its_children_are_stopped(jobs_env: JobsEnv) -> None:
    job = make_job()
    ref = started(jobs_env, job)
    os.kill(ref["pid"], signal.SIGKILL)
    result = wait_for(lambda: (r := jobs_env.backend.poll(job)).state != "RUNNING" and r, message="death")
    assert result.state == "GONE" and result.details["launched"] is True
    assert jobs_env.processes(job["id"])  # the grandchild still runs in the group
    jobs_env.backend.cancel(job)
    assert jobs_env.processes(job["id"]) == []


def test_crash_between_start_and_launch_record_adopts_the_runner(jobs_env: JobsEnv) -> None:
    job = make_job()
    ref = started(jobs_env, job)
    (jobs_env.workdir(job["id"]) / "launch.json").unlink()  # as if the dispatcher died right after Popen
    again = jobs_env.backend.launch(job)
    assert again["pid"] == ref["pid"] and jobs_env.runs(job["id"]) == [ref["pid"]]
    assert jobs_env.backend.poll(job).state == "RUNNING"
    jobs_env.backend.cancel(job)


def test_reused_pid_is_never_signalled(jobs_env: JobsEnv) -> None:
    """A reference whose start time does not match the live process with that pid is stale."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        job = make_job()
        workdir = jobs_env.workdir(job["id"])
        workdir.mkdir(parents=True)
        real = proc_info(other.pid)
        stale = {"pid": other.pid, "pgid": other.pid, "start_ticks": real.start_ticks - 1, "workdir": str(workdir)}
        (workdir / "launch.json").write_text(json.dumps(stale))
        assert jobs_env.backend.poll(job).state == "GONE"
        jobs_env.backend.cancel(job)
        assert other.poll() is None  # untouched
        (workdir / "launch.json").write_text(json.dumps({**stale, "start_ticks": real.start_ticks}))
        assert jobs_env.backend.poll(job).state == "RUNNING"
        jobs_env.backend.cancel(job)
        assert other.wait(timeout=5) == -signal.SIGTERM
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_result_file_written_without_final_event_is_seen_by_poll(jobs_env: JobsEnv) -> None:
    job = make_job()
    started(jobs_env, job)
    jobs_env.release(job["id"], state="FAILURE", exit_code=2, error_class="usage", no_event=True)
    result = wait_for(lambda: (r := jobs_env.backend.poll(job)).state != "RUNNING" and r, message="finish")
    assert (result.state, result.exit_code, result.error_class) == ("FAILURE", 2, "usage")
    assert (jobs_env.workdir(job["id"]) / RESULT_FILE).exists()


def test_image_only_app_is_refused_as_usage_error(jobs_env: JobsEnv) -> None:
    if get_app(IMAGE_APP) is None:
        pytest.skip(f"the {IMAGE_APP} app spec is not in the registry yet")
    with pytest.raises(LaunchError) as info:
        jobs_env.backend.launch(make_job(app=IMAGE_APP))
    assert info.value.error_class == "usage" and "container image" in str(info.value)


def test_unknown_app_and_bad_ids_never_touch_the_filesystem(jobs_env: JobsEnv) -> None:
    with pytest.raises(LaunchError) as info:
        jobs_env.backend.launch(make_job(app="no-such-app"))
    assert info.value.error_class == "usage"
    bad = {**make_job(), "id": "../../etc"}
    with pytest.raises(LaunchError):
        jobs_env.backend.launch(bad)
    assert jobs_env.backend.poll(bad).state == "GONE"
    jobs_env.backend.cancel(bad)  # no error, nothing to do
    assert not (jobs_env.settings.home / "etc").exists()


def test_runner_module_comes_from_the_environment(jobs_env: JobsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAESAR_RUNNER_MODULE", FAKE_RUNNER)
    assert LocalBackend(jobs_env.settings).runner_module == FAKE_RUNNER
    monkeypatch.delenv("CAESAR_RUNNER_MODULE")
    assert LocalBackend(jobs_env.settings).runner_module == "caesar_faas.runner"
    monkeypatch.setenv("CAESAR_RUNNER_MODULE", "x; rm -rf /")
    with pytest.raises(ValueError):
        LocalBackend(jobs_env.settings)
    assert jobs_env.backend.capacity() == jobs_env.settings.local_max_jobs
