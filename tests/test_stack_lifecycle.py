"""The local stack as a process tree: SIGTERM stops every child, kill -9 loses nothing,
the inline limit answers 413 JSON, /healthz reflects its dependencies."""

from __future__ import annotations

import pytest

from tests.fixtures.stack import LocalStack, session_pids
from tests.helpers import free_port, wait_for
from tests.samples import fits_bytes, sha256


@pytest.fixture
def own_stack(tmp_path):
    s = LocalStack(tmp_path / "home", free_port(), free_port(),
                   extra_env={"CAESAR_MAX_INLINE_UPLOAD": str(64 * 1024)})
    yield s
    s.stop()


def test_kill9_then_restart_keeps_everything(own_stack):
    own_stack.start()
    client = own_stack.client("alice")
    data = fits_bytes((60, 60), seed=5)
    file_id = client.post(own_stack.url + "/function/upload", files={"file": ("keep.fits", data)}).json()["uuid"]
    own_stack.kill9()
    assert not session_pids(own_stack.proc.pid)

    own_stack.start()
    client = own_stack.client("alice")
    assert file_id in [f["uuid"] for f in client.get(own_stack.url + "/function/files").json()["files"]]
    assert sha256(client.get(f"{own_stack.url}/function/files/{file_id}/content").content) == sha256(data)


def test_sigterm_stops_every_child(own_stack):
    own_stack.start()
    sid = own_stack.proc.pid
    assert len(session_pids(sid)) >= 5  # supervisor, nats-server, gateway, connector, cron
    own_stack.stop()
    assert own_stack.proc.returncode == 0
    wait_for(lambda: not session_pids(sid), timeout=60, message="every process of the stack to exit")


def test_body_over_inline_limit_is_413_naming_the_large_upload_route(own_stack):
    own_stack.start()
    big = fits_bytes((200, 200))  # 160 kB > 64 KiB limit
    resp = own_stack.client().post(own_stack.url + "/function/upload", files={"file": ("big.fits", big)})
    assert resp.status_code == 413
    body = resp.json()
    assert body["error"] == "too_large_for_inline_upload" and "JSON body" in body["status"]
    assert own_stack.client().get(own_stack.url + "/function/files").json()["files"] == []


def test_healthz_is_503_when_nats_is_unreachable(monkeypatch, tmp_path):
    from caesar_faas.local.gateway import create_app

    monkeypatch.setenv("CAESAR_HOME", str(tmp_path))
    monkeypatch.setenv("CAESAR_NATS_URL", f"nats://127.0.0.1:{free_port()}")
    resp = create_app().test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.json["checks"]["nats"].startswith("unreachable") and resp.json["checks"]["store"] == "ok"


def test_sigterm_also_stops_running_jobs_and_records_them(own_stack, tmp_path):
    from tests.synth import make_image
    from tests.test_stack_job_control import job_processes, record

    make_image(str(tmp_path / "big.fits"), size=2048, n_sources=30, seed=8)
    own_stack.extra_env["CAESAR_MAX_INLINE_UPLOAD"] = str(256 * 1024 * 1024)
    own_stack.start()
    client = own_stack.client("ned")
    with open(tmp_path / "big.fits", "rb") as fh:
        file_id = client.post(own_stack.url + "/function/upload", files={"file": ("big.fits", fh)}).json()["uuid"]
    job_id = client.post(own_stack.url + "/function/submit",
                         json={"app": "aegean", "job_inputs": {}, "data_inputs": file_id}).json()["job_id"]
    wait_for(lambda: job_processes(job_id), timeout=60, message="the runner to start")
    own_stack.stop()
    wait_for(lambda: not job_processes(job_id), timeout=60, message="the runner to be stopped with the stack")
    job = record(own_stack, job_id)
    assert job["state"] == "FAILURE" and job["error_class"] == "system" and "stopped" in job["status"]
