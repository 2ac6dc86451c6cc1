"""Issue 3 end to end: the local stack (as `make run` starts it) with the file functions, the
events they publish and the caesar-rest aliases."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from tests.helpers import wait_for
from tests.samples import fits_bytes, gzip_bytes, png_bytes, sha256, table_fits_bytes, truncated

pytestmark = pytest.mark.usefixtures("stack")


def upload(client, url, name, data, tag=None, path="/function/upload"):
    files = {"file": (name, data, "application/octet-stream")}
    return client.post(url + path, files=files, data={"tag": tag} if tag else None, timeout=30)


def stored_objects(stack):
    root = stack.home / "objects" / "files"
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".meta.json")) \
        if root.exists() else []


def test_upload_download_list_delete(stack):
    client = stack.client("alice")
    data = fits_bytes((80, 60), seed=1)
    resp = upload(client, stack.url, "m31.fits", data, tag="survey-a")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    for key in ("uuid", "filename_orig", "format", "size", "date", "tag", "status", "sha256", "shape"):
        assert key in body
    assert body["filename_orig"] == "m31.fits" and body["format"] == "fits" and body["tag"] == "survey-a"
    assert body["sha256"] == sha256(data) and body["shape"] == [80, 60]
    assert body["size"] == pytest.approx(len(data) / 2**20, rel=1e-3)
    file_id = body["uuid"]

    content = client.get(f"{stack.url}/function/files/{file_id}/content", timeout=30)
    assert content.status_code == 200
    assert sha256(content.content) == sha256(data)
    assert "m31.fits" in content.headers["Content-Disposition"]

    listed = client.get(f"{stack.url}/function/files", timeout=60).json()["files"]
    assert file_id in [f["uuid"] for f in listed]
    meta = client.get(f"{stack.url}/function/files/{file_id}", timeout=60)
    assert meta.status_code == 200 and meta.json()["sha256"] == sha256(data)

    assert client.delete(f"{stack.url}/function/files/{file_id}", timeout=60).status_code == 200
    for path in (f"/function/files/{file_id}", f"/function/files/{file_id}/content"):
        gone = client.get(stack.url + path, timeout=60)
        assert gone.status_code == 404 and gone.json()["error"] == "file_not_found"
    assert file_id not in [f["uuid"] for f in client.get(f"{stack.url}/function/files").json()["files"]]


def test_gzipped_fits_is_accepted(stack):
    data = gzip_bytes(fits_bytes((32, 32), seed=2))
    resp = upload(stack.client("alice"), stack.url, "small.fits.gz", data)
    assert resp.status_code == 201, resp.text
    assert resp.json()["format"] == "fits.gz" and resp.json()["shape"] == [32, 32]


@pytest.mark.parametrize(("name", "data", "status"), [
    ("image.fits", png_bytes(), 415),
    ("image.fits", truncated(fits_bytes((200, 200))), 422),
    ("image.png", fits_bytes(), 415),
    ("image.fits.gz", fits_bytes(), 415),
    ("image.fits.gz", gzip_bytes(fits_bytes())[:-40], 422),
    ("table.fits", table_fits_bytes(), 422),
])
def test_bad_uploads_are_refused_and_leave_nothing(stack, name, data, status):
    client = stack.client("carol")
    before_objects = stored_objects(stack)
    before_files = client.get(f"{stack.url}/function/files").json()["files"]
    resp = upload(client, stack.url, name, data)
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert set(resp.json()) >= {"error", "status"}
    assert stored_objects(stack) == before_objects
    assert client.get(f"{stack.url}/function/files").json()["files"] == before_files


def spools(stack):
    return sorted(p.name for p in stack.home.rglob(".upload-*"))


@pytest.mark.parametrize(("path", "status"), [("/function/upload", 201), ("/caesar/api/v1.0/upload", 200)])
def test_a_large_inline_upload_goes_off_the_connection_into_storage(stack, path, status):
    # Over 1 MiB the gateway hands the body over as it arrives and the upload spools the file part
    # in the same pass (serving_stream.py, multipart_streamed.py).
    client = stack.client("grace")
    data = fits_bytes((760, 720), seed=11)
    assert len(data) > 2 * 1024 * 1024
    resp = upload(client, stack.url, "large.fits", data, tag="large", path=path)
    assert resp.status_code == status, resp.text
    record = client.get(f"{stack.url}/function/files/{resp.json()['uuid']}", timeout=30).json()
    assert (record["sha256"], record["shape"], record["tag"]) == (sha256(data), [760, 720], "large")
    content = client.get(f"{stack.url}/function/files/{record['uuid']}/content", timeout=30)
    assert sha256(content.content) == sha256(data)
    assert spools(stack) == []


def test_a_large_inline_upload_with_curl(stack, tmp_path):
    # curl -F sends `Expect: 100-continue` for a body over 1 MiB: the gateway answers it when it
    # hands the request over, and the body then streams.
    image = tmp_path / "curl.fits"
    image.write_bytes(fits_bytes((760, 720), seed=14))
    done = subprocess.run(["curl", "-sS", "--fail-with-body", "-F", f"file=@{image}", "-F", "tag=curl",
                           "-H", f"Authorization: Bearer {stack.token('ivan')}", "-w", "\n%{http_code}",
                           f"{stack.url}/function/upload"], capture_output=True, text=True, timeout=60, check=False)
    body, _, status = done.stdout.rpartition("\n")
    assert (done.returncode, status) == (0, "201"), (done.stderr, done.stdout[:300])
    record = json.loads(body)
    assert (record["sha256"], record["tag"], record["filename_orig"]) == (sha256(image.read_bytes()), "curl", "curl.fits")
    assert spools(stack) == []


def test_a_large_inline_upload_refused_or_cut_off_leaves_nothing(stack):
    client = stack.client("heidi")
    before = stored_objects(stack)
    resp = upload(client, stack.url, "cut.fits", truncated(fits_bytes((1024, 1024), seed=12)))
    assert resp.status_code == 422 and resp.json()["error"]
    assert stored_objects(stack) == before and spools(stack) == []
    # A client that leaves mid-body: the spool it started is removed, nothing is registered.
    body = (b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"gone.fits\"\r\n\r\n"
            + fits_bytes((1024, 1024), seed=13))
    head = (f"POST /function/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {stack.token('heidi')}\r\n"
            f"Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {len(body) + 20}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", stack.http_port), timeout=30) as sock:
        sock.sendall(head.encode() + body[:3 * 1024 * 1024])
        wait_for(lambda: spools(stack), timeout=30, message="the upload to start spooling")
    wait_for(lambda: spools(stack) == [], timeout=30, message="the abandoned spool to be removed")
    assert stored_objects(stack) == before
    assert client.get(f"{stack.url}/function/files", timeout=30).json()["files"] == []
    assert client.get(f"{stack.url}/healthz", timeout=30).status_code == 200


def test_upload_requires_a_file_part(stack):
    resp = stack.client().post(f"{stack.url}/function/upload", data={"tag": "x"}, timeout=60)
    assert resp.status_code in (400, 415) and "error" in resp.json()


def test_pagination_walks_every_file_once(stack):
    client = stack.client("dave")
    ids = {upload(client, stack.url, f"p{i}.fits", fits_bytes((8, 8), seed=i)).json()["uuid"] for i in range(5)}
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{stack.url}/function/files", params=params).json()
        seen += [f["uuid"] for f in page["files"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and pages == 3
    bad = client.get(f"{stack.url}/function/files", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cursor"


def test_files_created_and_deleted_events_exactly_once(stack):
    async def scenario():
        nc = await nats.connect(stack.nats_url)
        js = nc.jetstream()
        created = await js.pull_subscribe("caesar.files.created", durable=None, stream="CAESAR",
                                          config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW))
        deleted = await js.pull_subscribe("caesar.files.deleted", durable=None, stream="CAESAR",
                                          config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW))
        client = stack.client("erin")
        ids = [await asyncio.to_thread(lambda i=i: upload(client, stack.url, f"e{i}.fits", fits_bytes(seed=i))
                                       .json()["uuid"]) for i in range(3)]
        await asyncio.to_thread(client.delete, f"{stack.url}/function/files/{ids[0]}")
        got = await drain(created, want=3)
        gone = await drain(deleted, want=1)
        await nc.close()
        return ids, got, gone

    ids, got, gone = asyncio.run(scenario())
    events = [json.loads(m.data) for m in got]
    assert sorted(e["data"]["file_id"] for e in events) == sorted(ids)
    for event, msg in zip(events, got, strict=True):
        assert event["specversion"] == "1.0" and event["type"] == "org.caesar.files.created"
        assert event["subject"] == event["data"]["file_id"] and event["source"] and event["time"]
        assert msg.headers["Nats-Msg-Id"] == event["id"]
    assert [json.loads(m.data)["data"]["file_id"] for m in gone] == [ids[0]]


async def drain(sub, want: int, quiet: float = 1.0):
    """Everything the consumer holds: at least `want` messages, then nothing more for `quiet` s."""
    msgs = []
    deadline = asyncio.get_running_loop().time() + 60
    # fetch() times out with nats.errors.TimeoutError or, on one of its paths, a bare
    # asyncio.TimeoutError (= TimeoutError, its base class): catch the base
    while len(msgs) < want and asyncio.get_running_loop().time() < deadline:
        try:
            msgs += await sub.fetch(batch=10, timeout=1)
        except TimeoutError:
            pass
    try:
        msgs += await sub.fetch(batch=10, timeout=quiet)
    except TimeoutError:
        pass
    for m in msgs:
        await m.ack()
    return msgs


def test_caesar_rest_aliases(stack):
    client = stack.client("frank")
    data = fits_bytes(seed=9)
    prefix = stack.url + "/caesar/api/v1.0"
    resp = upload(client, stack.url, "alias.fits", data, path="/caesar/api/v1.0/upload")
    assert resp.status_code == 200  # caesar-rest's code (the native route answers 201)
    file_id = resp.json()["uuid"]
    assert file_id in client.get(prefix + "/fileids").json()["file_ids"]
    assert sha256(client.get(f"{prefix}/download/{file_id}").content) == sha256(data)
    assert client.post(f"{prefix}/delete/{file_id}").status_code == 200
    assert client.get(f"{prefix}/download/{file_id}").status_code == 404
    assert client.get(f"{prefix}/delete/{file_id}").status_code == 404


def test_owner_scoping(stack):
    alice, bob = stack.client("alice"), stack.client("bob")
    file_id = upload(alice, stack.url, "mine.fits", fits_bytes(seed=3)).json()["uuid"]
    assert file_id not in [f["uuid"] for f in bob.get(f"{stack.url}/function/files").json()["files"]]
    for method, path in (("get", ""), ("get", "/content"), ("delete", "")):
        resp = getattr(bob, method)(f"{stack.url}/function/files/{file_id}{path}")
        assert resp.status_code == 404
    assert alice.get(f"{stack.url}/function/files/{file_id}").status_code == 200


def test_every_route_needs_a_token_but_healthz(stack):
    import requests

    assert requests.get(stack.url + "/healthz").status_code == 200
    for method, path in (("get", "/function/files"), ("post", "/function/upload"),
                         ("get", "/caesar/api/v1.0/fileids"), ("get", "/function/describe")):
        resp = getattr(requests, method)(stack.url + path)
        assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers
