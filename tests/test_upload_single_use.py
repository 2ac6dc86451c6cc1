"""Issue 18 items 1 and 5: a presigned PUT does not outlive its upload, and refused files count in
the quota and are cleaned up.

file:// — the signed endpoint refuses a second PUT once the file left `pending`.
s3:// (moto) — S3 cannot revoke a presigned URL, so the replay is stored; the object-created event
of the new version (as MinIO publishes it) marks the file invalid and deletes the bytes, so no
job ever runs on bytes that were not validated.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import requests

from caesar_faas.storage.base import ObjectInfo
from caesar_faas.storage.notifications import minio_record
from tests.fixtures.stack import LocalStack
from tests.helpers import free_port, wait_for
from tests.samples import fits_bytes, png_bytes

BUCKET = "single-use"


def objects_in(folder: Path) -> list[Path]:
    """What a user's storage folder holds; the storage removes the folder once it is empty."""
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def state_of(client: requests.Session, stack: LocalStack, file_id: str) -> str | None:
    return client.get(f"{stack.url}/function/files/{file_id}").json().get("state")


def presigned(client: requests.Session, stack: LocalStack, name: str, data: bytes) -> dict:
    resp = client.post(stack.url + "/function/upload", json={"filename": name, "size": len(data)})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_file_url_is_single_use(stack: LocalStack) -> None:
    client = stack.client("una")
    original, other = fits_bytes((40, 40), seed=1), fits_bytes((40, 40), seed=2)
    body = presigned(client, stack, "once.fits", original)
    url, file_id = body["single"]["url"], body["uuid"]
    assert requests.put(url, data=original, timeout=30).status_code == 200
    wait_for(lambda: state_of(client, stack, file_id) == "ready", timeout=60, message="registration")

    replay = requests.put(url, data=other, timeout=30)  # same size, valid signature, not expired
    assert replay.status_code == 403 and replay.json()["error"] == "forbidden"
    assert "single-use" in replay.json()["status"]
    content = client.get(f"{stack.url}/function/files/{file_id}/content")
    assert content.content == original
    assert state_of(client, stack, file_id) == "ready"


def test_invalid_upload_counts_in_quota_and_its_bytes_go(stack: LocalStack) -> None:
    client = stack.client("vera")
    png = png_bytes() * 2000  # what a client mislabels as FITS
    body = presigned(client, stack, "fake.fits", png)
    assert requests.put(body["single"]["url"], data=png, timeout=30).status_code == 200
    wait_for(lambda: state_of(client, stack, body["uuid"]) == "invalid", timeout=60, message="refusal")
    assert not objects_in(stack.home / "objects" / "files" / "vera")  # bytes deleted at once
    usage = client.get(stack.url + "/function/accounting").json()["usage"]
    assert usage["files"] == 1 and usage["bytes"] == len(png)  # counted until the monitor removes it


def test_invalid_files_expire(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from caesar_faas import uploads
    from caesar_faas.config import load_settings
    from caesar_faas.runtime import Services

    client = stack.client("wren")
    body = presigned(client, stack, "fake.fits", png_bytes())
    assert requests.put(body["single"]["url"], data=png_bytes(), timeout=30).status_code == 200
    wait_for(lambda: state_of(client, stack, body["uuid"]) == "invalid", timeout=60, message="refusal")
    for name, value in stack.env().items():
        if name.startswith("CAESAR_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("CAESAR_NATS_TOKEN", (stack.home / "nats.token").read_text().strip())
    svc = Services(load_settings())
    assert uploads.expire(svc, time.time() + svc.settings.upload_ttl + 1) >= 1
    assert client.get(f"{stack.url}/function/files/{body['uuid']}").status_code == 404
    assert client.get(stack.url + "/function/accounting").json()["usage"]["files"] == 0


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str):
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
    s = LocalStack(tmp_path_factory.mktemp("s3stack"), free_port(), free_port(),
                   extra_env={"CAESAR_STORAGE_URL": f"s3://{BUCKET}?endpoint_url={moto_endpoint}", **creds})
    s.start()
    yield s
    s.stop()


def test_s3_replayed_url_is_detected_on_its_event(s3_stack: LocalStack) -> None:
    stack = s3_stack
    client = stack.client("xena")
    original, other = fits_bytes((40, 40), seed=3), fits_bytes((40, 40), seed=4)
    body = presigned(client, stack, "s3.fits", original)
    url, file_id = body["single"]["url"], body["uuid"]
    assert requests.put(url, data=original, timeout=30).status_code == 200
    assert client.post(f"{stack.url}/function/upload/{file_id}/complete", json={}).status_code == 200
    wait_for(lambda: state_of(client, stack, file_id) == "ready", timeout=60, message="registration")

    # S3 accepts the replay (a presigned URL cannot be revoked) and MinIO announces the new version.
    assert requests.put(url, data=other, timeout=30).status_code == 200
    key = f"files/xena/{file_id}"
    head = boto3.client("s3", endpoint_url=stack.extra_env["CAESAR_STORAGE_URL"].split("endpoint_url=")[1],
                        region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing").head_object(Bucket=BUCKET, Key=key)
    event = minio_record(BUCKET, ObjectInfo(key, len(other), head["ETag"].strip('"'), 0.0), "s3:ObjectCreated:Put")
    system = {"Authorization": f"Bearer {stack.token('ops', ('admin',))}"}
    answer = requests.post(stack.url + "/function/registrar", json=event, headers=system, timeout=10)
    assert answer.status_code == 200 and answer.json()["results"] == ["invalid"]

    assert state_of(client, stack, file_id) == "invalid"
    refused = client.post(stack.url + "/function/submit", json={"app": "sep", "data_inputs": file_id})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_file"
    assert client.get(f"{stack.url}/function/files/{file_id}/content").status_code == 409
