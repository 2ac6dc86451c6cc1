"""Issue 7: object-created notifications register presigned uploads once; foreign keys are
ignored; a non-FITS object becomes invalid and jobs refuse it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import zlib

import nats
import requests

from caesar_faas.checksums import crc32_b64
from caesar_faas.storage.base import CRC32_HEADER, MIN_PART_SIZE, ObjectInfo
from caesar_faas.storage.notifications import minio_record
from tests.helpers import stream_messages, wait_for
from tests.samples import fits_bytes, png_bytes


def start_upload(client, stack, name, data):
    resp = client.post(stack.url + "/function/upload", json={"filename": name, "size": len(data)})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["state"] == "pending" and body["single"]["url"]
    return body


def state_of(client, stack, file_id):
    return client.get(f"{stack.url}/function/files/{file_id}").json().get("state")


def test_notification_twice_registers_once_and_emits_one_event(stack):
    client = stack.client("gina")
    data = fits_bytes((40, 40), seed=11)
    body = start_upload(client, stack, "twice.fits", data)
    file_id = body["uuid"]
    assert requests.put(body["single"]["url"], data=data, timeout=30).status_code in (200, 201, 204)
    wait_for(lambda: state_of(client, stack, file_id) == "ready", timeout=60, message="registration")

    record = minio_record("objects", ObjectInfo(f"files/gina/{file_id}", len(data), "x", 0.0),
                          "s3:ObjectCreated:Put")
    system = {"Authorization": f"Bearer {stack.token('ops', ('admin',))}"}
    for _ in range(2):
        again = requests.post(stack.url + "/function/registrar", json=record, headers=system, timeout=60)
        assert again.status_code == 200 and again.json()["results"] == ["unchanged: already ready"]

    async def created_events():
        nc = await nats.connect(stack.nats_url)
        try:
            msgs = await stream_messages(nc.jetstream(), "caesar.files.created")
        finally:
            await nc.close()
        return [json.loads(m.data)["data"]["file_id"] for m in msgs]

    assert asyncio.run(created_events()).count(file_id) == 1


def test_keys_outside_the_service_prefixes_are_ignored(stack):
    system = {"Authorization": f"Bearer {stack.token('ops', ('admin',))}"}
    for key in ("jobs/gina/00000000-0000-4000-8000-000000000000/catalog.csv", "elsewhere/file.fits",
                "files/gina/not-an-id"):
        record = minio_record("objects", ObjectInfo(key, 10, "x", 0.0), "s3:ObjectCreated:Put")
        resp = requests.post(stack.url + "/function/registrar", json=record, headers=system, timeout=60)
        assert resp.status_code == 200
        assert resp.json()["results"][0].startswith("ignored")


def test_registrar_is_internal(stack):
    resp = stack.client("gina").post(stack.url + "/function/registrar", json={"Records": []})
    assert resp.status_code == 403


def test_non_fits_object_becomes_invalid_and_jobs_refuse_it(stack):
    client = stack.client("hana")
    data = png_bytes() * 10
    body = start_upload(client, stack, "fake.fits", data)
    file_id = body["uuid"]
    requests.put(body["single"]["url"], data=data, timeout=30)
    client.post(f"{stack.url}/function/upload/{file_id}/complete", json={})
    wait_for(lambda: state_of(client, stack, file_id) == "invalid", timeout=60, message="invalid state")
    meta = client.get(f"{stack.url}/function/files/{file_id}").json()
    assert "not FITS" in meta["status"]
    resp = client.post(stack.url + "/function/submit", json={"app": "sep", "job_inputs": {}, "data_inputs": file_id})
    assert resp.status_code == 400, resp.text
    assert client.get(stack.url + "/function/jobs").json()["jobs"] == []


def crc(data: bytes) -> str:
    return crc32_b64(zlib.crc32(data))


def file_ids(client, stack):
    return {f["uuid"] for f in client.get(stack.url + "/function/files").json()["files"]}


def test_upload_limits_are_published(stack):
    answer = stack.client("ines").get(stack.url + "/function/upload")
    assert answer.status_code == 200
    limits = answer.json()
    assert limits["part_size"] == 64 * 1024 * 1024 and limits["min_part_size"] == MIN_PART_SIZE
    assert limits["checksum_header"] == CRC32_HEADER and limits["max_parts"] == 10_000
    assert requests.get(stack.url + "/function/upload", timeout=60).status_code == 401


def test_part_crc32_must_match_the_plan(stack):
    client = stack.client("ines")
    before = file_ids(client, stack)
    size = 2 * MIN_PART_SIZE + 1
    for body, message in [
        ({"part_crc32": ["AAAAAA=="] * 2}, "has 2 values"),  # three parts
        ({"part_crc32": ["AAAAAA=="] * 3, "part_size": 3 * MIN_PART_SIZE}, "has 3 values"),  # one PUT
        ({"part_crc32": ["not-base64"] * 3}, "base64 of 4 bytes"),
        ({"part_crc32": "AAAAAA=="}, "must be a list"),
    ]:
        answer = client.post(stack.url + "/function/upload",
                             json={"filename": "x.fits", "size": size, "part_size": MIN_PART_SIZE, **body})
        assert answer.status_code == 400 and answer.json()["field"] == "part_crc32", answer.text
        assert message in answer.json()["status"]
    assert file_ids(client, stack) == before  # nothing was stored


def test_damaged_part_refused_and_sha256_sent_with_the_completion(stack):
    client = stack.client("ines")
    data = fits_bytes((1200, 1200), seed=12)  # ~5.5 MiB: two parts of MIN_PART_SIZE
    chunks = [data[:MIN_PART_SIZE], data[MIN_PART_SIZE:]]
    digest = hashlib.sha256(data).hexdigest()
    plan = client.post(stack.url + "/function/upload", json={
        "filename": "crc.fits", "size": len(data), "part_size": MIN_PART_SIZE,
        "part_crc32": [crc(c) for c in chunks]}).json()
    first, second = plan["multipart"]["parts"]
    assert first["headers"] == {CRC32_HEADER: crc(chunks[0])}
    damaged = chunks[0][:-1] + b"\x00"
    refused = requests.put(first["url"], data=damaged, headers=first["headers"], timeout=30)
    assert refused.status_code == 400 and refused.json()["error"] == "bad_digest"
    etags = []
    for part, chunk in zip((first, second), chunks, strict=True):
        answer = requests.put(part["url"], data=chunk, headers=part["headers"], timeout=30)
        assert answer.status_code == 200
        etags.append({"number": part["number"], "etag": answer.headers["ETag"]})
    complete = f"{stack.url}/function/upload/{plan['uuid']}/complete"
    bad = client.post(complete, json={"parts": etags, "sha256": "nothex"})
    assert bad.status_code == 400 and bad.json()["field"] == "sha256"
    assert client.post(complete, json={"parts": etags, "sha256": digest}).status_code == 200
    wait_for(lambda: state_of(client, stack, plan["uuid"]) == "ready", timeout=60, message="registration")
    meta = client.get(f"{stack.url}/function/files/{plan['uuid']}").json()
    assert meta["sha256"] == digest
    content = client.get(f"{stack.url}/function/files/{plan['uuid']}/content").content
    assert content == data


def test_completion_sha256_must_match_the_one_given_at_creation(stack):
    client = stack.client("ines")
    data = fits_bytes((1200, 1200), seed=13)
    plan = client.post(stack.url + "/function/upload", json={
        "filename": "s.fits", "size": len(data), "part_size": MIN_PART_SIZE,
        "sha256": hashlib.sha256(data).hexdigest()}).json()
    etags = [{"number": p["number"], "etag": requests.put(p["url"], data=data[p["offset"]:p["offset"] + p["size"]],
                                                          timeout=30).headers["ETag"]}
             for p in plan["multipart"]["parts"]]
    complete = f"{stack.url}/function/upload/{plan['uuid']}/complete"
    other = hashlib.sha256(b"another file").hexdigest()
    answer = client.post(complete, json={"parts": etags, "sha256": other})
    assert answer.status_code == 400 and answer.json()["error"] == "sha256_mismatch"
    assert state_of(client, stack, plan["uuid"]) == "pending"  # nothing was completed
    assert client.post(complete, json={"parts": etags}).status_code == 200
    wait_for(lambda: state_of(client, stack, plan["uuid"]) == "ready", timeout=60, message="registration")
