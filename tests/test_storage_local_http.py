"""file:// signed URLs: the signer, the /storage blueprint (Flask test client and a real HTTP
server) and the MinIO-format notifications it sends."""

from __future__ import annotations

import io
import json
import os
import stat
import time
import tracemalloc
import zlib
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from flask import Flask

from caesar_faas.checksums import crc32_b64
from caesar_faas.storage import MIN_PART_SIZE, ObjectNotFound
from caesar_faas.storage.base import CRC32_HEADER, MAX_UNSIZED_PUT
from caesar_faas.storage.local import LocalStorage, version_tag
from caesar_faas.storage.local_http import storage_blueprint
from caesar_faas.storage.notifications import COMPLETE_MULTIPART, PUT, parse_minio_record
from caesar_faas.storage.signing import Grant, SignatureError, Signer, load_signing_key
from tests.fixtures.storage import LocalServer, storage_settings

MIB = 1024 * 1024


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def with_params(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


@pytest.fixture
def local(tmp_path: Path) -> tuple[LocalStorage, Flask, list]:
    settings = storage_settings(tmp_path / "home", public_url="http://testserver")
    events: list = []
    storage = LocalStorage(settings.objects_dir, settings=settings, notify=events.append)
    app = Flask("t")
    app.register_blueprint(storage_blueprint(storage))
    return storage, app, events


# ---- the signer -------------------------------------------------------------------------------

def _damaged(sig: str) -> str:
    """One character of the middle changed: its 6 bits all count (the last character's low bits
    do not, and the old damage, "AA" for the last two, equalled some signatures)."""
    middle = len(sig) // 2
    return sig[:middle] + ("B" if sig[middle] == "A" else "A") + sig[middle + 1:]


def test_signer_binds_every_field() -> None:
    signer = Signer(b"k" * 32)
    grant = Grant("PUT", "uploads/u/f", int(time.time()) + 60, size=10)
    query = signer.sign(grant)
    assert signer.verify("PUT", "uploads/u/f", query) == grant
    for method, key, changes in [
        ("GET", "uploads/u/f", {}),
        ("PUT", "uploads/u/g", {}),
        ("PUT", "uploads/u/f", {"size": "11"}),
        ("PUT", "uploads/u/f", {"expires": str(grant.expires + 1000)}),
        ("PUT", "uploads/u/f", {"part": "1"}),
        ("PUT", "uploads/u/f", {"sig": _damaged(query["sig"])}),
    ]:
        with pytest.raises(SignatureError):
            signer.verify(method, key, {**query, **changes})
    with pytest.raises(SignatureError):
        Signer(b"other").verify("PUT", "uploads/u/f", query)
    with pytest.raises(SignatureError, match="expired"):
        signer.verify("PUT", "uploads/u/f", query, now=grant.expires + 1)
    with pytest.raises(SignatureError, match="malformed"):
        signer.verify("PUT", "uploads/u/f", {"expires": "soon", "sig": "x"})


def test_signer_binds_the_maximum_size_of_an_unsized_put() -> None:
    signer = Signer(b"k" * 32)
    grant = Grant("PUT", "jobs/u/j/catalog.csv", int(time.time()) + 60, max_size=100)
    query = signer.sign(grant)
    assert query["max_size"] == "100" and "size" not in query
    assert signer.verify("PUT", "jobs/u/j/catalog.csv", query) == grant
    for changes in ({"max_size": "101"}, {"size": "100"}):
        with pytest.raises(SignatureError):
            signer.verify("PUT", "jobs/u/j/catalog.csv", {**query, **changes})
    without = {k: v for k, v in query.items() if k != "max_size"}
    with pytest.raises(SignatureError):  # dropping the limit does not lift it
        signer.verify("PUT", "jobs/u/j/catalog.csv", without)
    # An exact size and a maximum of the same number are different grants.
    exact = Grant("PUT", grant.key, grant.expires, size=100)
    assert signer.signature(exact) != signer.signature(grant)
    # Grants without a maximum sign the same message as before the field existed.
    assert exact.message() == json.dumps(["PUT", grant.key, grant.expires, 100, None, None, None],
                                         separators=(",", ":")).encode()

def test_signing_key_persisted_with_mode_0600(tmp_path: Path) -> None:
    settings = storage_settings(tmp_path / "home")
    key = load_signing_key(settings)
    path = tmp_path / "home" / "signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32
    assert load_signing_key(settings) == key  # a restart reads the same key
    assert [p.name for p in path.parent.iterdir()] == ["signing.key"]  # no temp file left behind
    assert load_signing_key(storage_settings(tmp_path / "home", signing_key="configured")) == b"configured"


def test_url_survives_restart(tmp_path: Path) -> None:
    settings = storage_settings(tmp_path / "home", public_url="http://testserver")
    first = LocalStorage(settings.objects_dir, settings=settings)
    first.put("files/u/a", io.BytesIO(b"abc"))
    url = first.presign_get("files/u/a")
    again = LocalStorage(settings.objects_dir, settings=settings)  # a new process, same home
    app = Flask("t")
    app.register_blueprint(storage_blueprint(again))
    answer = app.test_client().get(path_and_query(url))
    assert answer.status_code == 200 and answer.data == b"abc"


# ---- refusals -----------------------------------------------------------------------------------

def assert_forbidden(answer) -> None:
    assert answer.status_code == 403, answer.data
    body = answer.get_json()
    assert body["error"] == "forbidden" and body["status"]


def test_expired_altered_and_replayed_urls_are_refused(local) -> None:
    storage, app, _ = local
    client = app.test_client()
    storage.put("files/u1/a", io.BytesIO(b"secret a"))
    storage.put("files/u1/b", io.BytesIO(b"secret b"))
    good = storage.presign_get("files/u1/a", expires=60)
    assert client.get(path_and_query(good)).data == b"secret a"

    assert_forbidden(client.get(path_and_query(storage.presign_get("files/u1/a", expires=-1))))
    assert_forbidden(client.get(path_and_query(with_params(good, expires=str(int(time.time()) + 9999)))))
    assert_forbidden(client.get(path_and_query(with_params(good, filename="evil.sh"))))
    assert_forbidden(client.get(path_and_query(with_params(good, sig="A" * 43))))
    assert_forbidden(client.get(path_and_query(good).replace("files/u1/a", "files/u1/b")))  # other key
    assert_forbidden(client.get(path_and_query(good).split("&sig=")[0]))  # signature dropped
    assert_forbidden(client.put(path_and_query(good), data=b"overwrite"))  # GET grant used for PUT
    assert storage.read_bytes("files/u1/a") == b"secret a"

    put = storage.presign_put("uploads/u1/x", size=5, expires=60)
    assert_forbidden(client.get(path_and_query(put)))  # PUT grant used for GET
    assert_forbidden(client.put(path_and_query(put), data=b"123456"))  # another size
    assert_forbidden(client.put(path_and_query(put).replace("uploads/u1/x", "uploads/u1/y"), data=b"12345"))
    assert_forbidden(client.put(path_and_query(storage.presign_put("uploads/u1/x", size=5, expires=-1)),
                                data=b"12345"))
    assert not storage.exists("uploads/u1/x") and not storage.exists("uploads/u1/y")
    assert_forbidden(client.get("/storage/o/files/u1/a"))  # no signature at all


def test_expired_url_refused_over_real_http(local_storage_server: LocalServer) -> None:
    storage = local_storage_server.storage
    storage.put("files/u/a", io.BytesIO(b"x"))
    answer = requests.get(storage.presign_get("files/u/a", expires=-5), timeout=10)
    assert answer.status_code == 403
    assert answer.json()["error"] == "forbidden"
    answer = requests.put(storage.presign_put("uploads/u/a", size=1, expires=-5), data=b"x", timeout=10)
    assert answer.status_code == 403


# ---- signed PUT and GET -----------------------------------------------------------------------

def test_signed_put_then_get_through_test_client(local) -> None:
    storage, app, events = local
    client = app.test_client()
    data = os.urandom(3 * MIB + 5)
    answer = client.put(path_and_query(storage.presign_put("uploads/u1/f 1+x.fits", size=len(data))),
                        data=data, content_type="application/fits")
    assert answer.status_code == 200
    etag = version_tag(os.stat(storage.path("uploads/u1/f 1+x.fits")))  # names this version of the object
    assert answer.headers["ETag"] == f'"{etag}"'
    assert storage.read_bytes("uploads/u1/f 1+x.fits") == data

    [record] = events
    assert record["EventName"] == PUT
    assert record["Key"] == f"{storage.bucket}/uploads/u1/f 1+x.fits"
    assert record["Records"][0]["s3"]["object"]["key"] == "uploads%2Fu1%2Ff+1%2Bx.fits"
    assert parse_minio_record(record) == [(PUT, storage.bucket, "uploads/u1/f 1+x.fits", len(data), etag)]

    got = client.get(path_and_query(storage.presign_get("uploads/u1/f 1+x.fits", filename="résumé \"1\".fits")))
    assert got.status_code == 200 and got.data == data
    assert got.headers["Content-Type"] == "application/fits"
    assert got.headers["Content-Length"] == str(len(data))
    assert got.headers["ETag"] == f'"{etag}"'
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "r%C3%A9sum%C3%A9%20%221%22.fits" in disposition

    head = client.head(path_and_query(storage.presign_get("uploads/u1/f 1+x.fits")))
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))


def test_ranges(local) -> None:
    storage, app, _ = local
    client = app.test_client()
    data = bytes(range(256)) * 100
    storage.put("files/u/r", io.BytesIO(data))
    url = path_and_query(storage.presign_get("files/u/r"))
    part = client.get(url, headers={"Range": "bytes=2880-5759"})
    assert part.status_code == 206 and part.data == data[2880:5760]
    assert part.headers["Content-Range"] == f"bytes 2880-5759/{len(data)}"
    tail = client.get(url, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.data == data[-100:]
    over = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert over.status_code == 416 and over.headers["Content-Range"] == f"bytes */{len(data)}"
    multi = client.get(url, headers={"Range": "bytes=0-1,5-6"})  # several ranges: the whole object
    assert multi.status_code == 200 and multi.data == data


def test_missing_object_and_short_body(local) -> None:
    storage, app, events = local
    client = app.test_client()
    answer = client.get(path_and_query(storage.presign_get("files/u/none")))
    assert answer.status_code == 404 and answer.get_json()["error"] == "not_found"

    # A body shorter than the signed size (declared honestly) is refused and nothing is stored.
    url = path_and_query(storage.presign_put("uploads/u/short", size=10))
    answer = client.put(url, input_stream=io.BytesIO(b"12345"), headers={"Transfer-Encoding": "chunked"})
    assert answer.status_code == 400, answer.data
    assert not storage.exists("uploads/u/short")
    assert events == []
    assert os.listdir(storage.root / ".caesar" / "tmp") == []


def test_chunked_put_over_real_http(local_storage_server: LocalServer) -> None:
    storage = local_storage_server.storage
    data = os.urandom(2 * MIB + 3)

    def body():
        for i in range(0, len(data), 64 * 1024):
            yield data[i:i + 64 * 1024]

    answer = requests.put(storage.presign_put("uploads/u/chunked", size=len(data)), data=body(), timeout=30)
    assert answer.status_code == 200, answer.text
    assert storage.read_bytes("uploads/u/chunked") == data
    too_long = requests.put(storage.presign_put("uploads/u/long", size=10), data=iter([b"x" * 11]), timeout=30)
    assert too_long.status_code in (400, 413)
    assert not storage.exists("uploads/u/long")
    assert [r["EventName"] for r in local_storage_server.events] == [PUT]


def test_unsized_put_url_takes_any_size_up_to_its_limit(local, monkeypatch: pytest.MonkeyPatch) -> None:
    storage, app, events = local
    client = app.test_client()
    url = storage.presign_put("jobs/u/j/catalog.csv")
    assert f"max_size={MAX_UNSIZED_PUT}" in url and "&size=" not in url
    etags = set()
    for body in (os.urandom(MIB + 17), b"a,b\n", b""):
        answer = client.put(path_and_query(url), data=body, content_type="text/csv")
        assert answer.status_code == 200, answer.data
        assert answer.headers["ETag"] == f'"{storage.stat("jobs/u/j/catalog.csv").etag}"'
        etags.add(answer.headers["ETag"])
        assert storage.read_bytes("jobs/u/j/catalog.csv") == body
    assert len(etags) == 3  # each version its own ETag
    assert [parse_minio_record(r)[0][2] for r in events] == ["jobs/u/j/catalog.csv"] * 3
    got = client.get(path_and_query(storage.presign_get("jobs/u/j/catalog.csv")))
    assert got.headers["Content-Type"].startswith("text/csv")

    # Still bound to its key, its method and its expiry.
    assert_forbidden(client.put(path_and_query(url).replace("catalog.csv", "other.csv"), data=b"x"))
    assert_forbidden(client.get(path_and_query(url)))
    assert_forbidden(client.put(path_and_query(storage.presign_put("jobs/u/j/late", expires=-1)), data=b"x"))
    # A multipart part URL cannot be made into an unsized one.
    upload = storage.create_multipart("uploads/u/m3", size=MIN_PART_SIZE + 1, part_size=MIN_PART_SIZE)
    part = with_params(upload.parts[1].url, max_size="10")
    assert_forbidden(client.put(path_and_query(part), data=b"x"))

    # The limit is enforced: a declared length over it is refused before any byte is read...
    monkeypatch.setattr("caesar_faas.storage.local.MAX_UNSIZED_PUT", 10)
    small = storage.presign_put("jobs/u/j/small")
    assert "max_size=10" in small
    assert_forbidden(client.put(path_and_query(small), data=b"x" * 11))
    assert client.put(path_and_query(small), data=b"x" * 10).status_code == 200
    assert storage.read_bytes("jobs/u/j/small") == b"x" * 10
    assert not storage.exists("jobs/u/j/other.csv")


def test_unsized_put_over_real_http_streams_a_file(local_storage_server: LocalServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    storage = local_storage_server.storage
    source = tmp_path / "preview.png"
    source.write_bytes(os.urandom(3 * MIB + 1))
    with open(source, "rb") as fh:
        answer = requests.put(storage.presign_put("jobs/u/j/preview.png"), data=fh,
                              headers={"Content-Type": "image/png"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert storage.read_bytes("jobs/u/j/preview.png") == source.read_bytes()
    # A chunked body (no length declared up front) that runs past the limit: refused, nothing kept.
    monkeypatch.setattr("caesar_faas.storage.local.MAX_UNSIZED_PUT", 1000)
    limited = storage.presign_put("jobs/u/j/long")
    too_long = requests.put(limited, data=iter([b"z" * 600, b"z" * 600]), timeout=30)
    assert too_long.status_code in (400, 413)
    assert not storage.exists("jobs/u/j/long")
    assert os.listdir(storage.root / ".caesar" / "tmp") == []
    exact = requests.put(limited, data=iter([b"z" * 600, b"z" * 400]), timeout=30)
    assert exact.status_code == 200, exact.text
    assert storage.stat("jobs/u/j/long").size == 1000
    sizes = [r["Records"][0]["s3"]["object"]["size"] for r in local_storage_server.events]
    assert sizes == [source.stat().st_size, 1000]

def test_http_put_streams_to_disk(local_storage_server: LocalServer, tmp_path: Path) -> None:
    """The server side of a 48 MiB signed PUT allocates far less than the body (no request.data)."""
    size = 48 * MIB
    source = tmp_path / "source.bin"
    with open(source, "wb") as fh:
        block = os.urandom(MIB)
        for _ in range(size // MIB):
            fh.write(block)
    url = local_storage_server.storage.presign_put("uploads/u/big", size=size)
    tracemalloc.start()
    try:
        with open(source, "rb") as fh:  # requests streams a file object; the server runs in this process
            answer = requests.put(url, data=fh, timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status_code == 200, answer.text
    # Peaks are bimodal here (about 3.2 or 9.7 MiB for the same run, depending on thread timing in
    # this one process); a third of the body still proves the body is never held whole.
    assert peak < size / 3, f"peak {peak / MIB:.1f} MiB for a {size / MIB:.0f} MiB upload"
    assert local_storage_server.storage.stat("uploads/u/big").size == size


# ---- multipart --------------------------------------------------------------------------------

def test_multipart_through_test_client_notifies_once(local) -> None:
    storage, app, events = local
    client = app.test_client()
    data = os.urandom(MIN_PART_SIZE * 2 + 100)
    upload = storage.create_multipart("uploads/u/m", size=len(data), part_size=MIN_PART_SIZE)
    etags = []
    for part in reversed(upload.parts):  # any order, like S3
        answer = client.put(path_and_query(part.url), data=data[part.offset:part.offset + part.size])
        assert answer.status_code == 200
        etags.append((part.number, answer.headers["ETag"]))
    # A retried part replaces the earlier copy.
    again = client.put(path_and_query(upload.parts[0].url), data=data[:MIN_PART_SIZE])
    assert again.headers["ETag"] == dict(etags)[1]
    # A part URL is bound to its part: replaying part 1's URL as part 2 is refused.
    assert_forbidden(client.put(path_and_query(with_params(upload.parts[0].url, part="2")), data=data[:10]))
    assert events == []  # parts alone announce nothing

    info = storage.complete_multipart("uploads/u/m", upload.upload_id, sorted(etags))
    assert info.etag.endswith("-3")
    assert storage.read_bytes("uploads/u/m") == data
    [record] = events
    assert parse_minio_record(record) == [(COMPLETE_MULTIPART, storage.bucket, "uploads/u/m", len(data), info.etag)]
    with pytest.raises(ObjectNotFound):
        storage.complete_multipart("uploads/u/m", upload.upload_id, sorted(etags))
    late = client.put(path_and_query(upload.parts[0].url), data=data[:MIN_PART_SIZE])
    assert late.status_code == 404  # the upload is finished: parts have nowhere to go
    assert len(events) == 1


def test_multipart_refusals(local) -> None:
    storage, app, events = local
    client = app.test_client()
    upload = storage.create_multipart("uploads/u/m2", size=MIN_PART_SIZE + 1, part_size=MIN_PART_SIZE)
    last = upload.parts[1]
    assert client.put(path_and_query(last.url), data=b"x").status_code == 200
    with pytest.raises(ValueError, match="in order"):
        storage.complete_multipart("uploads/u/m2", upload.upload_id, [(2, "x")])
    with pytest.raises(ValueError, match="never uploaded"):
        storage.complete_multipart("uploads/u/m2", upload.upload_id, [(1, "x"), (2, "y")])
    with pytest.raises(ObjectNotFound):  # an upload id only works with its own key
        storage.complete_multipart("uploads/u/other", upload.upload_id, [(1, "x"), (2, "y")])
    with pytest.raises(ObjectNotFound):
        storage.complete_multipart("uploads/u/m2", "../../etc", [(1, "x")])
    storage.abort_multipart("uploads/u/m2", upload.upload_id)
    assert client.put(path_and_query(last.url), data=b"x").status_code == 404
    assert list(storage.list_multipart("")) == [] and events == []
    assert os.listdir(storage.root / ".caesar" / "multipart") == []


def crc(data: bytes) -> str:
    return crc32_b64(zlib.crc32(data))


def test_signer_binds_the_crc32() -> None:
    signer = Signer(b"k" * 32)
    grant = Grant("PUT", "files/u/f", int(time.time()) + 60, size=10, crc32=crc(b"0123456789"))
    query = signer.sign(grant)
    assert signer.verify("PUT", "files/u/f", query) == grant
    for changes in ({"crc32": crc(b"another body")}, {"max_size": "10"}):
        with pytest.raises(SignatureError):
            signer.verify("PUT", "files/u/f", {**query, **changes})
    with pytest.raises(SignatureError):  # dropping the checksum does not lift it
        signer.verify("PUT", "files/u/f", {k: v for k, v in query.items() if k != "crc32"})


def test_put_bound_to_a_crc32(local) -> None:
    storage, app, events = local
    client = app.test_client()
    data = os.urandom(3000)
    url = path_and_query(storage.presign_put("files/u/c", size=len(data), crc32=crc(data)))
    damaged = data[:-1] + bytes([data[-1] ^ 1])
    # The checksum travels in S3's signed header: without it, or with another value, 403.
    assert_forbidden(client.put(url, data=data))
    assert_forbidden(client.put(url, data=data, headers={CRC32_HEADER: crc(damaged)}))
    # A body with another CRC32 (same size, one bit flipped) is refused and nothing is stored.
    refused = client.put(url, data=damaged, headers={CRC32_HEADER: crc(data)})
    assert refused.status_code == 400 and refused.get_json()["error"] == "bad_digest"
    assert not storage.exists("files/u/c") and events == []
    assert os.listdir(storage.root / ".caesar" / "tmp") == []
    good = client.put(url, data=data, headers={CRC32_HEADER: crc(data)})
    assert good.status_code == 200 and storage.read_bytes("files/u/c") == data and len(events) == 1


def test_multipart_parts_bound_to_their_crc32(local) -> None:
    storage, app, events = local
    client = app.test_client()
    data = os.urandom(MIN_PART_SIZE + 100)
    crcs = [crc(data[:MIN_PART_SIZE]), crc(data[MIN_PART_SIZE:])]
    upload = storage.create_multipart("files/u/cm", size=len(data), part_size=MIN_PART_SIZE, crc32s=crcs)
    assert [p.headers for p in upload.parts] == [{CRC32_HEADER: c} for c in crcs]
    first, second = upload.parts
    body = data[:MIN_PART_SIZE]
    ok = client.put(path_and_query(first.url), data=body, headers=first.headers)
    assert ok.status_code == 200
    # A damaged retry of part 1 is refused and does not replace the good copy.
    damaged = bytes([body[0] ^ 1]) + body[1:]  # always differs from body
    refused = client.put(path_and_query(first.url), data=damaged, headers=first.headers)
    assert refused.status_code == 400 and refused.get_json()["error"] == "bad_digest"
    # Part 2's URL carries part 2's checksum: part 1's header does not fit it.
    assert_forbidden(client.put(path_and_query(second.url), data=data[MIN_PART_SIZE:], headers=first.headers))
    last = client.put(path_and_query(second.url), data=data[MIN_PART_SIZE:], headers=second.headers)
    info = storage.complete_multipart("files/u/cm", upload.upload_id,
                                      [(1, ok.headers["ETag"]), (2, last.headers["ETag"])], crc32s=crcs)
    assert info.size == len(data) and storage.read_bytes("files/u/cm") == data
    with pytest.raises(ValueError, match="CRC32 values for 2 parts"):
        storage.create_multipart("files/u/cm2", size=len(data), part_size=MIN_PART_SIZE, crc32s=crcs[:1])


# ---- local storage details ----------------------------------------------------------------------

def test_layout_and_stale_sidecar(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "objects", settings=storage_settings(tmp_path / "home"))
    storage.put("files/u/a", io.BytesIO(b"one"))
    assert (tmp_path / "objects" / "files" / "u" / "a").read_bytes() == b"one"
    assert [i.key for i in storage.list("")] == ["files/u/a"]  # bookkeeping never listed
    before = storage.stat("files/u/a").etag
    # A file changed behind the storage's back: the sidecar no longer matches, the ETag is renewed.
    (tmp_path / "objects" / "files" / "u" / "a").write_bytes(b"changed!")
    after = storage.stat("files/u/a").etag
    assert after != before and after == version_tag(os.stat(tmp_path / "objects" / "files" / "u" / "a"))
    assert storage.stat("files/u/a").etag == after and storage.read_bytes("files/u/a") == b"changed!"
    with pytest.raises(ValueError):  # a key below an existing object cannot exist on a filesystem
        storage.put("files/u/a/b", io.BytesIO(b"x"))
    storage.delete("files/u/a")
    assert sorted(os.listdir(tmp_path / "objects")) == [".caesar"]  # empty folders pruned


def test_gateway_blueprint_serves_the_service_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The module-level `blueprint` (what the local gateway mounts) follows the service settings."""
    from caesar_faas import runtime
    from caesar_faas.storage import clear_cache
    from caesar_faas.storage.local_http import blueprint

    monkeypatch.setenv("CAESAR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CAESAR_STORAGE_URL", f"file://{tmp_path}/objects")
    monkeypatch.setenv("CAESAR_PUBLIC_URL", "http://testserver")
    monkeypatch.delenv("CAESAR_SIGNING_KEY", raising=False)
    clear_cache()
    app = Flask("gw")
    app.register_blueprint(blueprint)
    storage = runtime.services().storage
    storage.put("files/u/g", io.BytesIO(b"via gateway"))
    url = storage.presign_get("files/u/g")
    assert url.startswith("http://testserver/storage/o/files/u/g?")
    assert app.test_client().get(path_and_query(url)).data == b"via gateway"

    monkeypatch.setenv("CAESAR_STORAGE_URL", "s3://some-bucket?endpoint_url=http://127.0.0.1:1")
    answer = app.test_client().get(path_and_query(url))
    assert answer.status_code == 404 and answer.get_json()["error"] == "not_found"
    clear_cache()
