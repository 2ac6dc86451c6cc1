"""The Slurm backend against a real single-node Slurm (tests/fixtures/slurm.py): every state
mapping, cancel, idempotent launch, tokens, errors and the grace period of vanished jobs, with
small shell commands as the runner so each job takes a second or two. The job that proves
Slurm's time limit is submitted by the first test here and checked in tests/test_slurm_stack.py:
slurmctld looks at time limits only every 30 s, so it needs 60-90 s, which the other tests use."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from caesar_faas.backends.base import LaunchError, PollResult
from caesar_faas.backends.slurm import SlurmBackend
from caesar_faas.backends.slurm.job import output_file
from tests.fixtures.k8s import sample_job, sample_spec
from tests.fixtures.slurm import SIDE_PARTITION, SlurmCluster
from tests.helpers import free_port, wait_for

SPECS = {
    "sep": sample_spec(resources={"limits": {"cpu": "1", "memory": "256Mi"}}),
    "huge": sample_spec(name="huge", resources={"limits": {"cpu": "1", "memory": "100000Gi"}}),
    "caesar": sample_spec(name="caesar", local_entry=None),
}
ENDED = ("SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED", "GONE")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def new_job(**changes: Any) -> dict[str, Any]:
    changes.setdefault("timeout", 60)
    changes.setdefault("dispatch", {"attempts": 1})
    return sample_job(**changes)


def until(backend: SlurmBackend, job: dict[str, Any], states: tuple[str, ...] = ENDED,
          timeout: float = 60) -> PollResult:
    return wait_for(lambda: (r := backend.poll(job)).state in states and r, timeout=timeout, interval=0.2,
                    message=f"Slurm job of {job['id']} in {states}")


def launched(backend: SlurmBackend, job: dict[str, Any]) -> dict[str, Any]:
    job["backend_ref"] = backend.launch(job)
    return job


@dataclasses.dataclass
class Early:
    """Jobs submitted before the module's first test and checked by its last ones."""

    finished: tuple[SlurmBackend, dict[str, Any]]  # ended at once: slurmctld forgets it after MinJobAge


@pytest.fixture(scope="module", autouse=True)
def early(slurm_cluster: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Early]:
    home = tmp_path_factory.mktemp("early")
    quick = SlurmBackend(slurm_cluster.service_settings(home, runner="true", lost_grace=0), get_app=SPECS.get)
    yield Early(finished=(quick, launched(quick, new_job())))


@pytest.fixture
def make_backend(slurm_cluster: SlurmCluster, tmp_path: Path) -> Iterator[Callable[..., SlurmBackend]]:
    """SlurmBackend factory on the shared cluster; the jobs a test leaves are cancelled after it."""
    made: list[SlurmBackend] = []

    def make(runner: str | None = None, **slurm: Any) -> SlurmBackend:
        clock = slurm.pop("clock", time.time)
        backend = SlurmBackend(slurm_cluster.service_settings(tmp_path, runner=runner, **slurm),
                               get_app=SPECS.get, clock=clock)
        made.append(backend)
        return backend

    names_before = {row["name"] for row in slurm_cluster.queue()}
    yield make
    for row in slurm_cluster.queue():
        if row["name"] not in names_before and row["state"] in ("PENDING", "RUNNING"):
            slurm_cluster.scancel(row["id"])


def test_job_goes_to_slurm_named_after_the_job_with_its_limits(slurm_cluster: SlurmCluster,
                                                              slurm_time_limited: tuple) -> None:
    backend, job = slurm_time_limited
    ref = job["backend_ref"]
    assert ref["backend"] == "slurm" and ref["name"] == f"caesar-{job['id']}"
    shown = slurm_cluster.run("scontrol", "show", "job", str(ref["slurm_job_id"]))
    for field in (f"JobName=caesar-{job['id']}", f"Comment={job['id']}", "TimeLimit=00:01:00", "Requeue=0",
                  f"Partition={SIDE_PARTITION}", "NumCPUs=1", "MinMemoryNode=64M",
                  f"WorkDir={slurm_cluster.workdir}", f"StdOut={output_file(backend.settings, job['id'])}"):
        assert field in shown, (field, shown)
    assert until(backend, job, ("PENDING", "RUNNING")).state in ("PENDING", "RUNNING")


def test_exit_zero_is_success(make_backend: Callable[..., SlurmBackend]) -> None:
    backend = make_backend("true")
    job = launched(backend, new_job())
    result = until(backend, job)
    assert (result.state, result.exit_code) == ("SUCCESS", 0)
    assert result.details["slurm_state"] == "COMPLETED" and result.details["elapsed"] >= 0


@pytest.mark.parametrize(("command", "code", "error_class"), [
    ("sh -c 'exit 3'", 3, "system"), ("sh -c 'exit 2'", 2, "usage"), ("sh -c 'kill -9 $$'", 137, "system")])
def test_a_failing_runner_is_failure_with_its_exit_code(make_backend: Callable[..., SlurmBackend], command: str,
                                                        code: int, error_class: str) -> None:
    backend = make_backend(command)
    result = until(backend, launched(backend, new_job()))
    assert (result.state, result.exit_code, result.error_class) == ("FAILURE", code, error_class), result


def test_job_environment_is_the_contract_and_nothing_of_the_service(
        make_backend: Callable[..., SlurmBackend], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "service-secret")
    monkeypatch.setenv("CAESAR_JWT_SECRET", "another-service-secret")
    monkeypatch.setenv("CAESAR_NATS_TOKEN", "service-nats-token")
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    backend = make_backend(shlex.join([sys.executable, "-c", dump]))
    job = launched(backend, new_job(options={"label": "$(touch /tmp/caesar-slurm-pwned)"}))
    assert until(backend, job).state == "SUCCESS"
    out = Path(output_file(backend.settings, job["id"])).read_text()
    env = json.loads(out.strip().splitlines()[-1])
    document = json.loads(env["CAESAR_JOB"])
    assert document["id"] == job["id"] and document["options"] == {"label": "$(touch /tmp/caesar-slurm-pwned)"}
    assert set(document["transfer"]["product_urls"]) >= {"catalog.csv", "job.log", "manifest.json"}
    assert "CAESAR_STORAGE_URL" not in env and "CAESAR_JWT_SECRET" not in env and "CAESAR_NATS_TOKEN" not in env
    assert "service-nats-token" not in out and env["CAESAR_JOB_KEY"]
    assert not [name for name in env if name.startswith("AWS_")] and "service-secret" not in out
    assert env["SLURM_JOB_NAME"] == f"caesar-{job['id']}" and env["CAESAR_WORKDIR"].endswith(job["id"])
    assert not Path("/tmp/caesar-slurm-pwned").exists()
    assert not Path(env["CAESAR_WORKDIR"]).exists()  # scratch removed when the runner ended


def test_launch_again_finds_the_job_instead_of_submitting_twice(slurm_cluster: SlurmCluster,
                                                                 make_backend: Callable[..., SlurmBackend]) -> None:
    backend = make_backend("sleep 60")
    job = new_job()
    first = backend.launch(job)
    job["dispatch"] = {"attempts": 2}  # a retry after a launch that seemed to fail
    again = backend.launch(job)
    assert again["slurm_job_id"] == first["slurm_job_id"]
    assert len(slurm_cluster.queued(f"caesar-{job['id']}")) == 1
    job["backend_ref"] = None  # the monitor polls a job launched without a recorded reference
    assert until(backend, job, ("PENDING", "RUNNING")).details["slurm_job_id"] == first["slurm_job_id"]


def test_cancel_ends_the_job_and_squeue_forgets_it(slurm_cluster: SlurmCluster,
                                                   make_backend: Callable[..., SlurmBackend]) -> None:
    backend = make_backend("sleep 60")
    job = launched(backend, new_job())
    assert until(backend, job, ("RUNNING",)).state == "RUNNING"
    backend.cancel(job)
    name = f"caesar-{job['id']}"
    wait_for(lambda: not slurm_cluster.run("squeue", "-h", "-n", name).strip(), timeout=60, interval=0.2,
             message="squeue to stop showing the job")
    assert until(backend, job).state == "ABORTED"
    backend.cancel(job)  # cancelling twice is fine
    backend.cancel(new_job())  # a job never submitted: nothing to do
    backend.cancel(new_job(backend_ref={"backend": "slurm", "slurm_job_id": 9_999_999}))  # unknown to Slurm


def test_scancel_from_outside_is_aborted(slurm_cluster: SlurmCluster, make_backend: Callable[..., SlurmBackend]) -> None:
    backend = make_backend("sleep 60")
    job = launched(backend, new_job())
    until(backend, job, ("RUNNING",))
    slurm_cluster.scancel(job["backend_ref"]["slurm_job_id"])
    result = until(backend, job)
    assert result.state == "ABORTED" and "outside" in result.message


def test_a_job_slurm_forgot_waits_out_the_grace_period(make_backend: Callable[..., SlurmBackend]) -> None:
    clock = Clock()
    backend = make_backend("true", lost_grace=30, clock=clock)
    job = new_job(state="RUNNING", backend_ref={"backend": "slurm", "slurm_job_id": 9_999_999})
    first = backend.poll(job)  # slurmrestd answers 500, error 2017: as for a job purged after MinJobAge
    assert first.state == "RUNNING" and first.details["transient"] and first.details["vanished"]
    clock.now += 29
    assert backend.poll(job).state == "RUNNING"
    clock.now += 2
    gone = backend.poll(job)
    assert gone.state == "GONE" and gone.details["launched"] is True and "9999999" in gone.message




def test_slurmrestd_unreachable_changes_nothing(make_backend: Callable[..., SlurmBackend]) -> None:
    backend = make_backend("true", url=f"http://127.0.0.1:{free_port()}")
    job = new_job(state="RUNNING", backend_ref={"backend": "slurm", "slurm_job_id": 1})
    result = backend.poll(job)
    assert result.state == "RUNNING" and result.details["transient"] and not result.details["vanished"]
    with pytest.raises(LaunchError) as launch:
        backend.launch(new_job())
    assert launch.value.error_class == "system"
    with pytest.raises(LaunchError) as cancel:
        backend.cancel(job)
    assert cancel.value.error_class == "system"


def test_a_bad_token_answers_500_and_changes_nothing(slurm_cluster: SlurmCluster,
                                                     make_backend: Callable[..., SlurmBackend]) -> None:
    good = make_backend("sleep 60")
    job = launched(good, new_job())
    forged = slurm_cluster.token()[:-4] + "AAAA"
    bad = make_backend("true", jwt_key=None, token=forged)
    result = bad.poll(job)
    assert result.state == "PENDING" and result.details["transient"] and "500" in result.message
    assert forged not in result.message
    with pytest.raises(LaunchError) as launch:
        bad.launch(new_job())
    assert launch.value.error_class == "system"


def test_a_static_token_works_like_a_minted_one(slurm_cluster: SlurmCluster,
                                                make_backend: Callable[..., SlurmBackend]) -> None:
    backend = make_backend("true", jwt_key=None, token=slurm_cluster.token(lifetime=300))
    assert until(backend, launched(backend, new_job())).state == "SUCCESS"


def test_a_job_no_node_can_hold_fails_as_usage(make_backend: Callable[..., SlurmBackend]) -> None:
    with pytest.raises(LaunchError) as refused:
        make_backend("true").launch(new_job(app="huge"))
    assert refused.value.error_class == "usage" and "2014" in str(refused.value)


def test_container_apps_need_the_image_folder(make_backend: Callable[..., SlurmBackend]) -> None:
    with pytest.raises(LaunchError) as refused:
        make_backend().launch(new_job(app="caesar"))
    assert refused.value.error_class == "usage" and "CAESAR_SLURM_IMAGE_DIR" in str(refused.value)


def test_launched_jobs_lists_this_services_live_jobs(make_backend: Callable[..., SlurmBackend]) -> None:
    backend = make_backend("sleep 60")
    job = launched(backend, new_job())
    until(backend, job, ("RUNNING",))
    listed = {j["id"]: j["backend_ref"] for j in backend.launched_jobs() or []}
    assert listed[job["id"]]["slurm_job_id"] == job["backend_ref"]["slurm_job_id"]
    throttled = make_backend("sleep 60", orphan_interval=3600)
    assert throttled.launched_jobs() is not None and throttled.launched_jobs() is None
    other_user = make_backend("sleep 60", user="nobody")
    assert job["id"] not in {j["id"] for j in other_user.launched_jobs() or []}


def test_a_finished_job_vanishes_after_min_job_age_then_counts_as_lost(early: Early) -> None:
    backend, job = early.finished
    states = []
    wait_for(lambda: states.append(backend.poll(job).state) or states[-1] == "GONE", timeout=90, interval=0.5,
             message="slurmctld to forget the finished job")
    assert states[0] == "SUCCESS" and set(states) == {"SUCCESS", "GONE"}, states

