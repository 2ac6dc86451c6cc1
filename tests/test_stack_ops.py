"""Issue 17 on the running local stack: drain refuses and resumes with nothing lost, and the
notifier (through the connector) sends exactly one signed webhook per finished job, retries a
receiver that answers 500 twice, mails through a real SMTP server, and submit refuses SSRF
targets with 400."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from caesar_faas.jobs.states import TERMINAL
from caesar_faas.notify.webhook import verify
from tests.fixtures.receivers import SmtpServer, WebhookReceiver, serve_smtp, serve_webhooks
from tests.fixtures.stack import LocalStack
from tests.helpers import free_port, wait_for
from tests.synth import make_image

SECRET = "stack-ops-webhook-secret-0123456789"


@pytest.fixture(scope="module")
def hooks() -> Iterator[WebhookReceiver]:
    with serve_webhooks() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def mailbox() -> Iterator[SmtpServer]:
    with serve_smtp() as server:
        yield server


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory, hooks, mailbox) -> Iterator[LocalStack]:
    s = LocalStack(tmp_path_factory.mktemp("ops-stack"), free_port(), free_port(), extra_env={
        "CAESAR_WEBHOOK_ALLOW": "127.0.0.1", "CAESAR_WEBHOOK_SECRET": SECRET, "CAESAR_SMTP_URL": mailbox.url,
        "CAESAR_MAIL_FROM": "caesar@ops.test", "CAESAR_LOCAL_MAX_JOBS": "1"})
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ops-images") / "small.fits"
    make_image(str(path), size=256, n_sources=8, seed=11)
    return path


def upload(client: requests.Session, stack: LocalStack, path: Path) -> requests.Response:
    with open(path, "rb") as fh:
        return client.post(stack.url + "/function/upload", files={"file": (path.name, fh)}, timeout=60)


def submit(client: requests.Session, stack: LocalStack, file_id: str, **extra) -> requests.Response:
    return client.post(stack.url + "/function/submit", timeout=30,
                       json={"app": "sep", "job_inputs": {}, "data_inputs": file_id, **extra})


def ended(client: requests.Session, stack: LocalStack, job_id: str, timeout: float = 180) -> dict:
    def view():
        doc = client.get(f"{stack.url}/function/status/{job_id}", timeout=30).json()
        return doc if doc["state"] in TERMINAL else None

    return wait_for(view, timeout=timeout, interval=0.2, message=f"job {job_id} to end")


def set_intake(stack: LocalStack, body: dict) -> requests.Response:
    return stack.client("root", ("admin",)).put(stack.url + "/function/accounting/service", json=body, timeout=30)


def test_drain_refuses_new_work_keeps_the_rest_and_resumes(ops_stack, image):
    client = ops_stack.client("dora")
    file_id = upload(client, ops_stack, image).json()["uuid"]
    before = [submit(client, ops_stack, file_id, tag=f"before-{i}").json()["job_id"] for i in range(2)]

    assert client.put(ops_stack.url + "/function/accounting/service", json={"accepting": False},
                      timeout=30).status_code == 403  # admins only
    drained = set_intake(ops_stack, {"accepting": False, "reason": "storage upgrade", "retry_after": 120})
    assert drained.status_code == 200, drained.text
    assert drained.json()["accepting"] is False and drained.json()["by"] == "root"
    state = client.get(ops_stack.url + "/function/accounting/service", timeout=30).json()
    assert state["accepting"] is False and state["reason"] == "storage upgrade"
    health = requests.get(ops_stack.url + "/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "draining"

    files_before = client.get(ops_stack.url + "/function/files", timeout=30).json()["files"]
    for resp in (upload(client, ops_stack, image), submit(client, ops_stack, file_id),
                 client.post(ops_stack.url + "/caesar/api/v1.0/job", timeout=30,
                             json={"app": "sep", "job_inputs": {}, "data_inputs": file_id}),
                 client.post(ops_stack.url + "/function/upload", timeout=30,
                             json={"filename": "big.fits", "size": 10 * 2**20}),
                 client.post(ops_stack.url + "/caesar/api/v1.0/upload", timeout=30,
                             files={"file": ("c.fits", image.read_bytes())})):
        assert resp.status_code == 503, resp.text
        assert resp.headers["Retry-After"] == "120"
        assert resp.json()["error"] == "draining" and resp.json()["reason"] == "storage upgrade"
    # Nothing stored by the refusals; what was there keeps working, jobs go on to the end.
    assert client.get(ops_stack.url + "/function/files", timeout=30).json()["files"] == files_before
    assert client.get(f"{ops_stack.url}/function/files/{file_id}/content", timeout=30).status_code == 200
    for job_id in before:
        assert ended(client, ops_stack, job_id)["state"] == "SUCCESS"
        assert client.get(f"{ops_stack.url}/function/output/{job_id}/catalog.csv", timeout=30).status_code == 200
    listed = client.get(ops_stack.url + "/function/jobs", timeout=30).json()["jobs"]
    assert sorted(j["job_id"] for j in listed) == sorted(before)

    resumed = set_intake(ops_stack, {"accepting": True})
    assert resumed.status_code == 200 and resumed.json()["accepting"] is True
    assert requests.get(ops_stack.url + "/healthz", timeout=30).json()["status"] == "ok"
    assert upload(client, ops_stack, image).status_code == 201
    assert submit(client, ops_stack, file_id).status_code == 202


def test_drain_body_is_validated(ops_stack):
    for body in ({}, {"accepting": "no"}, {"accepting": False, "reason": 5}, {"accepting": False, "retry_after": 0},
                 {"accepting": False, "extra": 1}):
        resp = set_intake(ops_stack, body)
        assert resp.status_code == 400, body
    assert set_intake(ops_stack, {"accepting": True}).json()["accepting"] is True


def test_submit_refuses_ssrf_targets_with_400_and_stores_nothing(ops_stack, image):
    client = ops_stack.client("sam")
    file_id = upload(client, ops_stack, image).json()["uuid"]
    for target in ("http://10.0.0.7/hook", "http://169.254.169.254/latest", "http://localhost:9/hook",
                   "http://[::1]:9/", "ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/"):
        resp = submit(client, ops_stack, file_id, notify={"webhook": target})
        assert resp.status_code == 400, (target, resp.text)
        assert resp.json()["option"] == "notify"
    assert submit(client, ops_stack, file_id, notify={"email": "x@y"}).status_code == 400
    assert client.get(ops_stack.url + "/function/jobs", timeout=30).json()["jobs"] == []


def test_one_signed_event_per_finished_job_with_retries_and_a_mail(ops_stack, image, hooks, mailbox):
    client = ops_stack.client("nina")
    file_id = upload(client, ops_stack, image).json()["uuid"]
    hooks.fail_first["/flaky"] = 2
    plain = submit(client, ops_stack, file_id, notify={"webhook": hooks.url("/ok")}).json()["job_id"]
    flaky = submit(client, ops_stack, file_id, notify={"webhook": hooks.url("/flaky"),
                                                       "email": "nina@example.org"}).json()["job_id"]
    # Queued behind the others (one slot), then cancelled: ABORTED is a terminal state too.
    aborted = submit(client, ops_stack, file_id, notify={"webhook": hooks.url("/aborted")}).json()["job_id"]
    assert client.post(f"{ops_stack.url}/function/cancel/{aborted}", timeout=30).json()["state"] == "ABORTED"
    states = {job_id: ended(client, ops_stack, job_id)["state"] for job_id in (plain, flaky, aborted)}
    assert states == {plain: "SUCCESS", flaky: "SUCCESS", aborted: "ABORTED"}

    wait_for(lambda: hooks.for_path("/ok") and hooks.for_path("/aborted") and len(hooks.for_path("/flaky")) >= 3
             and mailbox.box.messages, timeout=60, message="the notifications")
    for path, job_id, count in (("/ok", plain, 1), ("/aborted", aborted, 1), ("/flaky", flaky, 3)):
        got = hooks.for_path(path)
        assert len(got) == count, path  # the flaky one: 500, 500, then 200
        for request in got:
            assert verify(SECRET, request.body, request.headers["X-Caesar-Signature"])
            event = json.loads(request.body)
            assert event["subject"] == job_id and event["id"] == f"{job_id}-{states[job_id]}"
            assert event["data"]["state"] == states[job_id]
    (message,) = mailbox.box.messages
    assert message["To"] == "nina@example.org" and flaky in message["Subject"]
    view = wait_for(lambda: (v := client.get(f"{ops_stack.url}/function/status/{flaky}", timeout=30).json())
                    ["notifications"]["webhook"]["status"] == "sent" and v, timeout=30, message="the record")
    assert view["notifications"]["webhook"]["attempts"] == 3 and view["notifications"]["email"]["status"] == "sent"
    # Nothing more arrives later (another monitor pass, a repeated event): one per job end.
    wait_for(lambda: requests.post(ops_stack.url + "/function/monitor", timeout=30).json()["ran"], timeout=30,
             interval=0.5, message="a monitor pass")
    assert len(hooks.for_path("/ok")) == 1 and len(hooks.for_path("/flaky")) == 3 and len(mailbox.box.messages) == 1
