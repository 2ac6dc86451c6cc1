"""The local backend's warm runner (backends/warm.py, runner/zygote.py) with real processes: a
forked runner is what a fresh `python -m` runner would be (the job's environment exactly, its
own session, folder, stdin, signals, fresh module state), cancel stops its whole group, and a
dead or unusable zygote leaves the job to a plain process, started once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from caesar_faas.backends.local import LocalBackend, group_members
from caesar_faas.backends.warm import WarmRunner
from caesar_faas.runner.zygote import _single_threaded
from tests.fixtures.jobs import FAKE_RUNNER, JobsEnv
from tests.helpers import wait_for
from tests.test_local_backend import make_job

PROBE_RUNNER = "tests.fixtures.probe_runner"
ROOT = Path(__file__).resolve().parents[1]


def warmed(env: JobsEnv, module: str) -> WarmRunner:
    """A backend for `module` whose zygote is up and has said it is ready."""
    env.backend = LocalBackend(env.settings, runner_module=module)
    runner = env.backend._warm_runner(None)
    assert runner is not None
    runner.stop()  # shared by the process's backends: start from a fresh one, whatever ran before
    env.backend.warm()
    wait_for(runner.ready, timeout=120, message="warm runner ready")
    return runner


def probe(env: JobsEnv, job: dict, plan: dict | None = None) -> dict:
    workdir = env.workdir(job["id"])
    if plan is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "plan.json").write_text(json.dumps(plan))
    env.backend.launch(job)
    return json.loads(wait_for(lambda: (workdir / "probe.json").read_text(), message="probe report"))


def test_a_forked_runner_is_a_fresh_process_with_exactly_its_jobs_environment(
        jobs_env: JobsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = warmed(jobs_env, PROBE_RUNNER)
    zygote = runner.pid
    # Set after the zygote started: a job gets the environment of its launch, not the zygote's.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "set-after-warm-up")
    first, second = make_job(owner="alice"), make_job(owner="bob")
    reports = [probe(jobs_env, job) for job in (first, second)]
    assert runner.forks == 2
    for job, report in zip((first, second), reports, strict=True):
        workdir = jobs_env.workdir(job["id"])
        assert report["ppid"] == zygote  # forked, not started
        assert report["environ"] == jobs_env.backend._env(job, workdir)
        assert json.loads(report["environ"]["CAESAR_JOB"])["id"] == job["id"]
        assert report["environ"]["AWS_ACCESS_KEY_ID"] == "set-after-warm-up"
        assert report["pid"] == report["pgid"] == report["sid"]  # its own session and group
        assert report["cwd"] == str(workdir.resolve()) == report["path0"]
        assert report["argv0"].endswith("probe_runner.py")
        assert report["stdin_is_devnull"]
        assert report["signals"] == {"SIGTERM": "default", "SIGCHLD": "default",
                                     "SIGINT": "default_int_handler", "SIGHUP": "default"}
        assert report["threads"] == 1
        assert report["seen_before"] == []  # no module state of an earlier job
        assert report["tmpdir"] == f"{workdir}/tmp"
        expected = {f"probe of job {job['id']} on stdout", "probe on stderr"}
        out = workdir / "runner.out"
        wait_for(lambda o=out, e=expected: e <= set(o.read_text().splitlines()), message="runner output")  # type: ignore[misc]
        wait_for(lambda j=job["id"]: jobs_env.processes(j) == [], message="probe exit")  # type: ignore[misc]
    assert runner.pid == zygote  # the zygote itself ran no job


def test_cancel_stops_a_forked_runners_whole_group(jobs_env: JobsEnv) -> None:
    runner = warmed(jobs_env, FAKE_RUNNER)
    job = make_job()
    ref = jobs_env.backend.launch(job)
    child = int(wait_for(lambda: (jobs_env.workdir(job["id"]) / "child.pid").read_text(), message="finder start"))
    assert runner.forks == 1 and ref["pid"] == ref["pgid"]
    assert {ref["pid"], child} <= set(jobs_env.processes(job["id"]))
    assert jobs_env.backend.poll(job).state == "RUNNING"
    jobs_env.backend.cancel(job)
    assert jobs_env.processes(job["id"]) == [] and group_members(ref["pgid"]) == []
    assert jobs_env.backend.poll(job).state == "GONE"


def test_a_finished_forked_runner_is_polled_from_its_result(jobs_env: JobsEnv) -> None:
    warmed(jobs_env, FAKE_RUNNER)
    job = make_job()
    ref = jobs_env.backend.launch(job)
    wait_for(lambda: (jobs_env.workdir(job["id"]) / "child.pid").exists(), message="finder start")
    jobs_env.release(job["id"], state="SUCCESS", exit_code=0, products=["catalog.csv"])
    assert jobs_env.backend.wait_gone(job, 60)  # woken by the runner's exit (pidfd)
    result = jobs_env.backend.poll(job)
    assert result.state == "SUCCESS" and result.details["products"] == ["catalog.csv"]
    jobs_env.backend.launch(job)  # a finished runner is not started again
    assert jobs_env.runs(job["id"]) == [ref["pid"]]


def test_a_dead_zygote_leaves_the_job_to_a_plain_process_started_once(jobs_env: JobsEnv) -> None:
    runner = warmed(jobs_env, PROBE_RUNNER)
    zygote = runner.pid
    assert zygote is not None
    os.kill(zygote, signal.SIGKILL)
    wait_for(lambda: runner.pid is None, message="zygote death seen")
    job = make_job()
    report = probe(jobs_env, job, plan={"wait": True})
    assert report["ppid"] == os.getpid()  # a plain process of this one
    assert report["environ"] == jobs_env.backend._env(job, jobs_env.workdir(job["id"]))
    assert runner.forks == 0 and not runner.ready()
    again = jobs_env.backend.launch(job)  # idempotent: the running plain runner is kept
    assert again["pid"] == report["pid"]
    jobs_env.backend.cancel(job)
    assert jobs_env.processes(job["id"]) == []


def test_a_zygote_that_breaks_the_protocol_is_stopped_and_the_job_runs_plain(jobs_env: JobsEnv) -> None:
    runner = warmed(jobs_env, PROBE_RUNNER)
    zygote = runner.pid
    assert zygote is not None and runner._sock is not None
    runner._sock.sendall(b"\xff\xff\xff\xffgarbage")  # the zygote reads a bogus message and exits
    job = make_job()
    report = probe(jobs_env, job)
    assert report["ppid"] == os.getpid()
    wait_for(lambda: not os.path.exists(f"/proc/{zygote}"), message="broken zygote gone")
    assert runner.pid is None


def test_the_zygote_will_not_fork_with_a_second_thread() -> None:
    code = ("import threading, time\n"
            "from caesar_faas.runner.zygote import _single_threaded\n"
            "before = _single_threaded()\n"
            "stop = threading.Event()\n"
            "t = threading.Thread(target=stop.wait); t.start()\n"
            "print(before, _single_threaded()); stop.set(); t.join()\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]
    assert isinstance(_single_threaded(), bool)


def test_the_zygote_exits_with_the_process_that_started_it(tmp_path: Path) -> None:
    code = ("import sys, time\n"
            "from caesar_faas.backends.warm import warm_runner\n"
            "from caesar_faas.backends.local import LocalBackend\n"
            "env = LocalBackend._pass_env()\n"
            f"runner = warm_runner({PROBE_RUNNER!r}, env['PYTHONPATH'], env)\n"
            "runner.start()\n"
            "deadline = time.monotonic() + 120\n"
            "while not runner.ready() and time.monotonic() < deadline:\n"
            "    time.sleep(0.05)\n"
            "print(runner.pid, flush=True)\n"
            "import os; os._exit(0)\n")  # no clean-up at all: as a killed service would go
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=180)
    zygote = int(out.stdout.split()[-1])
    wait_for(lambda: not os.path.exists(f"/proc/{zygote}"), timeout=60, message="zygote exit")
