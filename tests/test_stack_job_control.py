"""Issue 4's failure paths on the running local stack: cancel, timeout, a killed runner,
kill -9 of the whole stack right after a submit, repeated submitted events, bad submissions."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import nats
import pytest

from caesar_faas.events.cloudevents import encode, make_event
from caesar_faas.store.sqlite import SQLiteStore
from tests.fixtures.stack import LocalStack
from tests.helpers import free_port, wait_for
from tests.synth import make_image


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    make_image(str(folder / "big.fits"), size=2048, n_sources=50, seed=3)
    make_image(str(folder / "small.fits"), size=256, n_sources=10, seed=4)
    return folder


def upload(client, stack, path: Path) -> str:
    with open(path, "rb") as fh:
        resp = client.post(stack.url + "/function/upload", files={"file": (path.name, fh)}, timeout=120)
    assert resp.status_code == 201, resp.text
    return resp.json()["uuid"]


def submit(client, stack, app, file_id, **extra) -> str:
    resp = client.post(stack.url + "/function/submit", timeout=30,
                       json={"app": app, "job_inputs": {}, "data_inputs": file_id, **extra})
    assert resp.status_code == 202, resp.text
    return resp.json()["job_id"]


def status(client, stack, job_id) -> dict:
    return client.get(f"{stack.url}/function/status/{job_id}", timeout=30).json()


def job_processes(job_id: str) -> list[int]:
    """Live processes of this job: those whose environment names it (a runner started as a
    process, the finder under it) and those working in its folder (a runner forked from the warm
    runner keeps the warm runner's start-up environment in /proc, but has the job's cwd)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            if stat[stat.rindex(b")") + 2:][:1] == b"Z":
                continue
            if job_id.encode() in (entry / "environ").read_bytes() or job_id in os.readlink(entry / "cwd"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def record(stack, job_id) -> dict:
    return SQLiteStore(stack.home / "caesar.db").get("jobs", job_id)


def test_cancel_running_job_aborts_within_5s_and_leaves_no_process(stack, images):
    client = stack.client("ivy")
    job_id = submit(client, stack, "aegean", upload(client, stack, images / "big.fits"))
    wait_for(lambda: status(client, stack, job_id)["progress"] >= 15 and job_processes(job_id), timeout=120,
             message="the finder to run")
    started = time.monotonic()
    resp = client.post(f"{stack.url}/function/cancel/{job_id}", timeout=30)
    assert resp.status_code == 200 and resp.json()["state"] == "ABORTED"
    wait_for(lambda: not job_processes(job_id), timeout=60, message="every process of the job to exit")
    assert time.monotonic() - started <= 5
    assert client.post(f"{stack.url}/function/cancel/{job_id}").status_code == 200  # idempotent
    assert status(client, stack, job_id)["state"] == "ABORTED"


def test_job_over_its_timeout_ends_timed_out(stack, images):
    client = stack.client("ivy")
    job_id = submit(client, stack, "aegean", upload(client, stack, images / "big.fits"), timeout=4)
    view = wait_for(lambda: (v := status(client, stack, job_id))["state"] in ("TIMED-OUT", "FAILURE", "SUCCESS")
                    and v, timeout=120, message="the job to end")
    assert view["state"] == "TIMED-OUT" and view["error_class"] == "timeout", view
    wait_for(lambda: not job_processes(job_id), timeout=60, message="no process left")
    resp = client.post(f"{stack.url}/function/cancel/{job_id}")
    assert resp.status_code == 409


def test_killed_runner_ends_failure_system_within_two_monitor_periods(stack, images):
    client = stack.client("jon")
    job_id = submit(client, stack, "aegean", upload(client, stack, images / "big.fits"))
    wait_for(lambda: (record(stack, job_id) or {}).get("backend_ref") and status(client, stack, job_id)["state"]
             == "RUNNING", timeout=120, message="the runner to run")
    os.kill(record(stack, job_id)["backend_ref"]["pid"], signal.SIGKILL)
    killed = time.monotonic()
    view = wait_for(lambda: (v := status(client, stack, job_id))["state"] not in ("STARTED", "RUNNING") and v,
                    timeout=60, message="the monitor to notice")
    assert view["state"] == "FAILURE" and view["error_class"] == "system", view
    period = float(stack.env()["CAESAR_LOCAL_CRON_SECONDS"])
    assert time.monotonic() - killed <= 2 * period + 5  # two periods, and one monitor run's own time
    wait_for(lambda: not job_processes(job_id), timeout=60, message="the orphaned finder to be stopped")


def test_same_submitted_event_three_times_launches_once(stack, images):
    client = stack.client("kim")
    job_id = submit(client, stack, "sep", upload(client, stack, images / "small.fits"))
    event = make_event("caesar.jobs.submitted", {"job_id": job_id}, about=job_id)

    async def replay():
        nc = await nats.connect(stack.nats_url)
        js = nc.jetstream()
        for n in range(3):  # three deliveries that JetStream does not deduplicate
            await js.publish("caesar.jobs.submitted", encode(event), headers={"Nats-Msg-Id": f"{job_id}-replay-{n}"})
        await nc.close()

    asyncio.run(replay())
    wait_for(lambda: status(client, stack, job_id)["state"] == "SUCCESS", timeout=120, message="success")
    wait_for(lambda: not (record(stack, job_id) or {}).get("active"), timeout=60, message="slot released")
    assert record(stack, job_id)["dispatch"]["attempts"] == 1


@pytest.mark.parametrize(("body", "option"), [
    ({"app": "sep", "job_inputs": {"nope": 1}}, "nope"),
    ({"app": "sep", "job_inputs": {"minarea": "5"}}, "minarea"),
    ({"app": "sep", "job_inputs": {"minarea": 5.5}}, "minarea"),
    ({"app": "sep", "job_inputs": {"minarea": True}}, "minarea"),
    ({"app": "sep", "job_inputs": {"minarea": -3}}, "minarea"),
    ({"app": "sep", "job_inputs": {"filter_type": "$(touch /tmp/caesar-pwned)"}}, "filter_type"),
    ({"app": "sep", "job_inputs": {"filter_type": "; rm -rf / #"}}, "filter_type"),
    ({"app": "nosuchapp", "job_inputs": {}}, "app"),
    ({"app": "caesar", "job_inputs": {}}, "app"),
])
def test_bad_submissions_store_and_launch_nothing(stack, images, body, option):
    client = stack.client("lea")
    file_id = upload(client, stack, images / "small.fits")
    before = client.get(stack.url + "/function/jobs").json()["jobs"]
    resp = client.post(stack.url + "/function/submit", json={**body, "data_inputs": file_id}, timeout=30)
    assert resp.status_code == 400, resp.text
    assert resp.json()["option"] == option and resp.json()["error"]
    assert client.get(stack.url + "/function/jobs").json()["jobs"] == before
    assert not Path("/tmp/caesar-pwned").exists()


def test_foreign_or_unknown_file_is_refused_alike(stack, images):
    alice, bob = stack.client("alice"), stack.client("bob")
    file_id = upload(alice, stack, images / "small.fits")
    foreign = bob.post(stack.url + "/function/submit", json={"app": "sep", "job_inputs": {}, "data_inputs": file_id})
    unknown = bob.post(stack.url + "/function/submit",
                       json={"app": "sep", "job_inputs": {}, "data_inputs": "00000000-0000-4000-8000-000000000000"})
    assert foreign.status_code == unknown.status_code == 400
    assert foreign.json()["status"].replace(file_id, "X") == unknown.json()["status"].replace(
        "00000000-0000-4000-8000-000000000000", "X")


def test_kill9_right_after_submit_runs_the_job_exactly_once(tmp_path, images):
    own = LocalStack(tmp_path / "home", free_port(), free_port())
    own.start()
    try:
        client = own.client("max")
        job_id = submit(client, own, "sep", upload(client, own, images / "small.fits"))
        own.kill9()
        own.start()
        client = own.client("max")
        wait_for(lambda: status(client, own, job_id)["state"] == "SUCCESS", timeout=120, message="success")
        assert record(own, job_id)["dispatch"]["attempts"] == 1
        log = client.get(f"{own.url}/function/output/{job_id}/job.log").text
        assert log.count("command 1/1: ") == 1
    finally:
        own.stop()

