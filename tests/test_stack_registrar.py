"""Issue 7: object-created notifications register presigned uploads once; foreign keys are
ignored; a non-FITS object becomes invalid and jobs refuse it."""

from __future__ import annotations

import asyncio
import json

import nats
import requests

from caesar_faas.storage.base import ObjectInfo
from caesar_faas.storage.notifications import minio_record
from tests.helpers import wait_for
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
    wait_for(lambda: state_of(client, stack, file_id) == "ready", timeout=10, message="registration")

    record = minio_record("objects", ObjectInfo(f"files/gina/{file_id}", len(data), "x", 0.0),
                          "s3:ObjectCreated:Put")
    system = {"Authorization": f"Bearer {stack.token('ops', ('admin',))}"}
    for _ in range(2):
        again = requests.post(stack.url + "/function/registrar", json=record, headers=system, timeout=10)
        assert again.status_code == 200 and again.json()["results"] == ["unchanged: already ready"]

    async def created_events():
        nc = await nats.connect(stack.nats_url)
        js = nc.jetstream()
        sub = await js.pull_subscribe("caesar.files.created", stream="CAESAR")
        msgs = []
        try:
            while True:
                msgs += await sub.fetch(batch=100, timeout=1)
        except nats.errors.TimeoutError:
            pass
        await nc.close()
        return [json.loads(m.data)["data"]["file_id"] for m in msgs]

    assert asyncio.run(created_events()).count(file_id) == 1


def test_keys_outside_the_service_prefixes_are_ignored(stack):
    system = {"Authorization": f"Bearer {stack.token('ops', ('admin',))}"}
    for key in ("jobs/gina/00000000-0000-4000-8000-000000000000/catalog.csv", "elsewhere/file.fits",
                "files/gina/not-an-id"):
        record = minio_record("objects", ObjectInfo(key, 10, "x", 0.0), "s3:ObjectCreated:Put")
        resp = requests.post(stack.url + "/function/registrar", json=record, headers=system, timeout=10)
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
    wait_for(lambda: state_of(client, stack, file_id) == "invalid", timeout=10, message="invalid state")
    meta = client.get(f"{stack.url}/function/files/{file_id}").json()
    assert "not FITS" in meta["status"]
    resp = client.post(stack.url + "/function/submit", json={"app": "sep", "job_inputs": {}, "data_inputs": file_id})
    assert resp.status_code == 400, resp.text
    assert client.get(stack.url + "/function/jobs").json()["jobs"] == []
