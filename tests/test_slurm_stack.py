"""The running local stack on CAESAR_JOB_BACKEND=slurm against a real single-node Slurm
(tests/fixtures/slurm.py): the dispatcher submits through slurmrestd, the real runner runs the
real finder inside the Slurm job (reaching storage through its presigned URLs and NATS for its
events), and the monitor reconciles what Slurm says."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import nats
import pytest

from caesar_faas.backends.slurm import SlurmBackend
from caesar_faas.config import load_settings
from caesar_faas.events.cloudevents import encode, make_event
from caesar_faas.store.sqlite import SQLiteStore
from tests.fixtures.k8s import sample_job
from tests.fixtures.slurm import SlurmCluster
from tests.fixtures.stack import LocalStack
from tests.helpers import free_port, wait_for
from tests.synth import make_image
from tests.test_stack_job_control import job_processes, record, status, submit, upload

ENDED = ("SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("slurm-images")
    make_image(str(folder / "small.fits"), size=256, n_sources=10, seed=4)
    make_image(str(folder / "nobeam.fits"), size=256, n_sources=8, seed=5, header_beam=False)
    # BANE needs >10 s on one core for 2048 x 2048 pixels: a job that runs long enough to stop it.
    make_image(str(folder / "big.fits"), size=2048, n_sources=50, seed=3)
    return folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, slurm_cluster: SlurmCluster) -> Any:
    home = tmp_path_factory.mktemp("slurm-stack")
    # The jobs publish their events with a token of their own (CAESAR_SLURM_NATS_TOKEN); on one
    # machine it is simply the stack's, which `make run` keeps in <home>/nats.token.
    token = secrets.token_hex(16)
    (home / "nats.token").write_text(token + "\n")
    (home / "nats.token").chmod(0o600)
    s = LocalStack(home, free_port(), free_port(), extra_env={
        "CAESAR_JOB_BACKEND": "slurm", **slurm_cluster.environment(CAESAR_SLURM_NATS_TOKEN=token)})
    s.start()
    yield s
    s.stop()


@pytest.fixture
def client(stack: LocalStack, slurm: SlurmCluster) -> Any:
    return stack.client("hpc")


def ends(client: Any, stack: LocalStack, job_id: str, timeout: float = 180) -> dict[str, Any]:
    return wait_for(lambda: (v := status(client, stack, job_id))["state"] in ENDED and v, timeout=timeout,
                    interval=0.2, message=f"job {job_id} to end")


def slurm_id(stack: LocalStack, job_id: str) -> int:
    return wait_for(lambda: ((record(stack, job_id) or {}).get("backend_ref") or {}).get("slurm_job_id"), timeout=60,
                    message="the dispatcher to submit the Slurm job")


def running(client: Any, stack: LocalStack, job_id: str) -> int:
    """The Slurm job id, once the runner reported it runs the finder."""
    ident = slurm_id(stack, job_id)
    wait_for(lambda: status(client, stack, job_id)["progress"] >= 15, timeout=120, message="the finder to run")
    return ident


def step_daemons(ident: int) -> list[int]:
    """The slurmstepd processes of Slurm job `ident`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(f"slurmstepd: [{ident}.".encode()):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_sep_runs_to_success_with_its_catalogue(client, stack, slurm, images) -> None:
    job_id = submit(client, stack, "sep", upload(client, stack, images / "small.fits"))
    view = ends(client, stack, job_id)
    assert (view["state"], view["exit_status"]) == ("SUCCESS", 0), view
    sources = client.get(f"{stack.url}/function/output/{job_id}/catalog.json", timeout=30).json()["sources"]
    assert 8 <= len(sources) <= 12  # the image holds 10
    assert client.get(f"{stack.url}/function/output/{job_id}/catalog.csv").status_code == 200
    ref = record(stack, job_id)["backend_ref"]
    assert ref["backend"] == "slurm" and ref["name"] == f"caesar-{job_id}"
    rows = slurm.queued(f"caesar-{job_id}")
    assert [r["comment"] for r in rows] == [job_id] and rows[0]["id"] == str(ref["slurm_job_id"])


def test_failing_finder_ends_failure_with_its_exit_code(client, stack, slurm, images) -> None:
    job_id = submit(client, stack, "sep", upload(client, stack, images / "nobeam.fits"))
    view = ends(client, stack, job_id)
    assert (view["state"], view["exit_status"], view["error_class"]) == ("FAILURE", 2, "usage"), view
    log = client.get(f"{stack.url}/function/output/{job_id}/job.log", timeout=30)
    assert log.status_code == 200 and "beam" in log.text.lower()
    # Slurm saw the same end: the batch script returned the runner's code
    shown = wait_for(lambda: (out := slurm.run("scontrol", "show", "job", str(slurm_id(stack, job_id))))
                     and "JobState=RUNNING" not in out and "JobState=COMPLETING" not in out and out, timeout=60)
    assert "JobState=FAILED" in shown and "ExitCode=2:0" in shown, shown


def test_cancel_ends_aborted_and_squeue_no_longer_shows_it(client, stack, slurm, images) -> None:
    job_id = submit(client, stack, "aegean", upload(client, stack, images / "big.fits"))
    running(client, stack, job_id)
    resp = client.post(f"{stack.url}/function/cancel/{job_id}", timeout=30)
    assert resp.status_code == 200 and resp.json()["state"] == "ABORTED"
    wait_for(lambda: not slurm.run("squeue", "-h", "-n", f"caesar-{job_id}").strip(), timeout=60, interval=0.2,
             message="squeue to stop showing the job")
    wait_for(lambda: not job_processes(job_id), timeout=60, message="every process of the job to exit")
    assert status(client, stack, job_id)["state"] == "ABORTED"
    assert [r["state"] for r in slurm.queued(f"caesar-{job_id}")] == ["CANCELLED"]


def test_scancel_from_outside_ends_aborted(client, stack, slurm, images) -> None:
    job_id = submit(client, stack, "aegean", upload(client, stack, images / "big.fits"))
    slurm.scancel(running(client, stack, job_id))
    view = ends(client, stack, job_id, timeout=60)
    assert view["state"] == "ABORTED" and "outside the service" in view["status"], view
    wait_for(lambda: not job_processes(job_id), timeout=60, message="every process of the job to exit")


def test_same_submitted_event_three_times_submits_once(client, stack, slurm, images) -> None:
    job_id = submit(client, stack, "sep", upload(client, stack, images / "small.fits"))
    event = make_event("caesar.jobs.submitted", {"job_id": job_id}, about=job_id)

    async def replay() -> None:
        nc = await nats.connect(stack.nats_url)
        js = nc.jetstream()
        for n in range(3):  # three deliveries JetStream does not deduplicate
            await js.publish("caesar.jobs.submitted", encode(event), headers={"Nats-Msg-Id": f"{job_id}-again-{n}"})
        await nc.close()

    asyncio.run(replay())
    assert ends(client, stack, job_id)["state"] == "SUCCESS"
    assert len(slurm.queued(f"caesar-{job_id}")) == 1
    assert record(stack, job_id)["dispatch"]["attempts"] == 1


def test_orphaned_slurm_jobs_are_cancelled(client, stack, slurm, images) -> None:
    # 1. a caesar-* job the store has never heard of (its record expired, another stack's leftover)
    stray = SlurmBackend(dataclasses.replace(load_settings(), job_backend="slurm", home=stack.home,
                                             slurm=slurm.slurm_settings(runner="sleep 300")))
    unknown = sample_job(timeout=300, dispatch={"attempts": 1}, input={"file_id": "f", "key": "files/x/y",
                                                                         "filename": "y.fits"})
    stray_id = stray.launch(unknown)["slurm_job_id"]
    # 2. a job the store says was cancelled two minutes ago, whose cancel never reached Slurm
    job_id = submit(client, stack, "aegean", upload(client, stack, images / "big.fits"))
    lost_cancel = running(client, stack, job_id)
    assert SQLiteStore(stack.home / "caesar.db").update(
        "jobs", job_id, {"state": "ABORTED", "active": False, "status": "Aborted", "finished": time.time() - 120},
        expect={"state": "RUNNING"})

    def cancelled(ident: int) -> bool:
        return [r["state"] for r in slurm.queue() if r["id"] == str(ident)] in (["CANCELLED"], [])

    wait_for(lambda: cancelled(stray_id) and cancelled(lost_cancel), timeout=60, interval=0.5,
             message="the monitor to cancel both orphans")
    wait_for(lambda: not job_processes(job_id) and not job_processes(unknown["id"]), timeout=60,
             message="the orphans' processes to exit")
    assert status(client, stack, job_id)["state"] == "ABORTED"


def test_slurms_time_limit_ends_a_job_timed_out(slurm_time_limited) -> None:
    """Its job (tests/fixtures/slurm.py) was submitted by the first Slurm test; it shares the node,
    so this comes before the test that stops the node."""
    backend, job = slurm_time_limited
    result = wait_for(lambda: (r := backend.poll(job)).state not in ("PENDING", "RUNNING") and r, timeout=180,
                      interval=0.5, message="Slurm's time limit to end the job")
    assert (result.state, result.error_class) == ("TIMED-OUT", "timeout"), result
    assert result.details["slurm_state"] == "TIMEOUT" and result.details["slurm_reason"] == "TimeLimit"


def test_stopped_slurmd_leaves_the_job_to_the_grace_rule(client, stack, slurm, images) -> None:
    """The node dies with the job on it: slurmd stops and the job's processes with it. Until
    slurmctld gives up on the node (SlurmdTimeout) nothing changes; then the job ends FAILURE
    (system), through NODE_FAIL or, once slurmctld forgot the job, the grace-period rule."""
    job_id = submit(client, stack, "aegean", upload(client, stack, images / "big.fits"))
    ident = running(client, stack, job_id)
    slurm.stop_daemon("slurmd")
    for pid in step_daemons(ident) + job_processes(job_id):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not job_processes(job_id), timeout=60, message="the job's processes to die")
    assert status(client, stack, job_id)["state"] == "RUNNING"  # a silent node is not yet a failure
    view = ends(client, stack, job_id, timeout=120)
    assert (view["state"], view["error_class"]) == ("FAILURE", "system"), view
    assert "NODE_FAIL" in view["status"] or "vanished" in view["status"], view
    slurm.start_slurmd()
    slurm.wait_idle(timeout=90)
