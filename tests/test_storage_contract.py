"""The Storage contract, run against file:// (signed URLs served over real HTTP) and moto S3."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from caesar_faas.checksums import crc32_b64
from caesar_faas.storage import MIN_PART_SIZE, ObjectNotFound, Storage, open_storage
from caesar_faas.storage.base import CRC32_HEADER, MAX_UNSIZED_PUT
from caesar_faas.storage.local import LocalStorage, version_tag
from tests.fixtures.storage import storage_settings

MIB = 1024 * 1024


def payload(size: int, seed: int = 1) -> bytes:
    """Deterministic, incompressible-looking bytes."""
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 128
    return bytes(out[:size])


class Endless(io.RawIOBase):
    """A read-only stream of `size` bytes that never exists in memory at once."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.block = payload(MIB, seed=7)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        n = min(n, len(self.block))
        chunk = self.block[:n]
        self.left -= n
        self.md5.update(chunk)
        return chunk


def assert_etag(storage: Storage, key: str, etag: str, data: bytes) -> None:
    """S3 (moto): the md5 of a single PUT's bytes. file://: the version tag of the file that
    holds the object (it names the version without reading the bytes, storage/local.py)."""
    if isinstance(storage, LocalStorage):
        assert etag == version_tag(os.stat(storage.path(key)))
    else:
        assert etag == hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_put_open_round_trip_multi_chunk(storage_backend: Storage) -> None:
    data = payload(2 * MIB + 12345)
    info = storage_backend.put("files/u1/f1", io.BytesIO(data), size=len(data))
    assert info.key == "files/u1/f1"
    assert info.size == len(data)
    assert_etag(storage_backend, "files/u1/f1", info.etag, data)
    chunks = list(storage_backend.open("files/u1/f1"))
    assert len(chunks) >= 3  # streamed, not one blob
    assert b"".join(chunks) == data
    stat = storage_backend.stat("files/u1/f1")
    assert (stat.size, stat.etag) == (len(data), info.etag)
    assert stat.modified > 0


def test_put_replaces_and_size_mismatch_keeps_old(storage_backend: Storage) -> None:
    first = storage_backend.put("k/a", io.BytesIO(b"first")).etag
    second = storage_backend.put("k/a", io.BytesIO(b"second version")).etag
    assert storage_backend.read_bytes("k/a") == b"second version"
    assert second != first and storage_backend.stat("k/a").etag == second  # a new version, a new ETag
    with pytest.raises(ValueError):
        storage_backend.put("k/a", io.BytesIO(b"short"), size=10)
    with pytest.raises(ValueError):
        storage_backend.put("k/a", io.BytesIO(b"much too long"), size=3)
    assert storage_backend.read_bytes("k/a") == b"second version"
    assert storage_backend.stat("k/a").etag == second  # a refused write leaves the version alone


def test_ranged_reads(storage_backend: Storage) -> None:
    data = payload(3 * MIB)
    storage_backend.put("r/obj", io.BytesIO(data))
    assert storage_backend.read_bytes("r/obj", start=0, end=2880) == data[:2880]
    assert storage_backend.read_bytes("r/obj", start=MIB - 5, end=2 * MIB + 5) == data[MIB - 5:2 * MIB + 5]
    assert storage_backend.read_bytes("r/obj", start=len(data) - 10) == data[-10:]
    assert storage_backend.read_bytes("r/obj", start=len(data) - 10, end=len(data) + 100) == data[-10:]
    assert storage_backend.read_bytes("r/obj", start=len(data) + 1) == b""
    assert storage_backend.read_bytes("r/obj", start=5, end=5) == b""


def test_empty_object(storage_backend: Storage) -> None:
    info = storage_backend.put("e/empty", io.BytesIO(b""))
    assert info.size == 0
    assert_etag(storage_backend, "e/empty", info.etag, b"")
    assert storage_backend.read_bytes("e/empty") == b""


def test_list_by_prefix_sorted_and_delete(storage_backend: Storage) -> None:
    keys = ["jobs/u1/j1/b.csv", "jobs/u1/j1/a.csv", "jobs/u1/j2/x", "jobs/u1-other/y", "jobs/u2/j3/z",
            "files/u1/f"]
    for key in keys:
        storage_backend.put(key, io.BytesIO(key.encode()))
    assert [i.key for i in storage_backend.list("jobs/u1/")] == ["jobs/u1/j1/a.csv", "jobs/u1/j1/b.csv",
                                                                 "jobs/u1/j2/x"]
    assert [i.key for i in storage_backend.list("jobs/u1")] == ["jobs/u1-other/y", "jobs/u1/j1/a.csv",
                                                                "jobs/u1/j1/b.csv", "jobs/u1/j2/x"]
    assert [i.key for i in storage_backend.list("")] == sorted(keys)
    assert [i.size for i in storage_backend.list("files/")] == [len(b"files/u1/f")]
    assert list(storage_backend.list("nothing/")) == []

    assert storage_backend.delete("jobs/u1/j2/x") is True
    assert storage_backend.delete("jobs/u1/j2/x") is False
    assert not storage_backend.exists("jobs/u1/j2/x")
    assert storage_backend.delete_prefix("jobs/u1/j1/") == 2
    assert [i.key for i in storage_backend.list("jobs/")] == ["jobs/u1-other/y", "jobs/u2/j3/z"]


def test_missing_key(storage_backend: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        storage_backend.stat("no/such")
    with pytest.raises(ObjectNotFound):
        storage_backend.open("no/such")  # raised at call time, before any iteration
    with pytest.raises(ObjectNotFound):
        storage_backend.open("no/such", start=3, end=3)
    assert storage_backend.exists("no/such") is False
    assert storage_backend.delete("no/such") is False


BAD_KEYS = ["", "/abs", "a//b", "a/../b", "..", "../x", "a/./b", "a/", "a\\b", "a\x00b", "a\nb",
            ".caesar/meta", "x" * 1025]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_rejected(storage_backend: Storage, key: str) -> None:
    with pytest.raises(ValueError):
        storage_backend.put(key, io.BytesIO(b"x"))
    with pytest.raises(ValueError):
        storage_backend.stat(key)
    with pytest.raises(ValueError):
        storage_backend.open(key)
    with pytest.raises(ValueError):
        storage_backend.delete(key)
    with pytest.raises(ValueError):
        storage_backend.presign_get(key)
    with pytest.raises(ValueError):
        storage_backend.presign_put(key, size=1)


def test_list_rejects_traversal_prefix(storage_backend: Storage) -> None:
    with pytest.raises(ValueError):
        list(storage_backend.list("../"))
    with pytest.raises(ValueError):
        list(storage_backend.list("a/../../"))


def test_presigned_get_and_put_with_requests(storage_backend: Storage) -> None:
    data = payload(MIB + 777)
    put_url = storage_backend.presign_put("uploads/u1/f9", size=len(data), expires=300)
    answer = requests.put(put_url, data=data, timeout=30)
    assert answer.status_code == 200, answer.text
    assert_etag(storage_backend, "uploads/u1/f9", answer.headers["ETag"].strip('"'), data)
    assert storage_backend.read_bytes("uploads/u1/f9") == data

    get_url = storage_backend.presign_get("uploads/u1/f9", expires=300, filename="my image.fits")
    answer = requests.get(get_url, timeout=30)
    assert answer.status_code == 200
    assert answer.content == data
    assert "my%20image.fits" in answer.headers["Content-Disposition"]

    answer = requests.get(get_url, headers={"Range": "bytes=10-19"}, timeout=30)
    assert answer.status_code == 206
    assert answer.content == data[10:20]
    assert answer.headers["Content-Range"] == f"bytes 10-19/{len(data)}"


def test_presigned_put_without_size_takes_any_body(storage_backend: Storage, tmp_path: os.PathLike) -> None:
    """A PUT URL made before the size is known (a job's products): one URL, bodies of any size,
    streamed from a file with its Content-Length, content type kept; a replay replaces the object."""
    url = storage_backend.presign_put("jobs/u1/j1/catalog.csv", expires=300)
    data = payload(MIB + 4321, seed=5)
    source = os.path.join(tmp_path, "catalog.csv")
    with open(source, "wb") as fh:
        fh.write(data)
    with open(source, "rb") as fh:
        answer = requests.put(url, data=fh, headers={"Content-Type": "text/csv"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.request.headers["Content-Length"] == str(len(data))
    assert_etag(storage_backend, "jobs/u1/j1/catalog.csv", answer.headers["ETag"].strip('"'), data)
    assert storage_backend.read_bytes("jobs/u1/j1/catalog.csv") == data
    answer = requests.get(storage_backend.presign_get("jobs/u1/j1/catalog.csv"), timeout=30)
    assert answer.headers["Content-Type"].startswith("text/csv")

    for body in (b"short", b""):  # the same URL, other sizes: nothing binds it to one
        answer = requests.put(url, data=body, timeout=30)
        assert answer.status_code == 200, answer.text
        assert storage_backend.read_bytes("jobs/u1/j1/catalog.csv") == body
    assert storage_backend.stat("jobs/u1/j1/catalog.csv").size == 0
    assert [i.key for i in storage_backend.list("jobs/u1/")] == ["jobs/u1/j1/catalog.csv"]


def test_presign_put_refuses_a_negative_size(storage_backend: Storage) -> None:
    with pytest.raises(ValueError):
        storage_backend.presign_put("jobs/u1/j1/x", size=-1)
    assert MAX_UNSIZED_PUT == 5 * 1024 ** 3  # S3's single-PUT limit, the one both backends apply


def test_s3_signs_content_length_only_when_the_size_is_given(s3_storage_url: str, tmp_path) -> None:
    """moto does not check signatures, so check what S3 would: a sized URL signs content-length
    (S3 then refuses any other size), an unsized one signs only the host."""
    storage = open_storage(s3_storage_url, storage_settings(tmp_path / "home"))

    def signed_headers(url: str) -> str:
        return parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0]

    assert signed_headers(storage.presign_put("jobs/u/j/a", size=10)) == "content-length;host"
    assert signed_headers(storage.presign_put("jobs/u/j/a")) == "host"


def multipart_upload(storage_backend: Storage, key: str, data: bytes, part_size: int) -> list[tuple[int, str]]:
    upload = storage_backend.create_multipart(key, size=len(data), part_size=part_size, expires=300)
    assert upload.key == key and upload.part_size == part_size
    parts = []
    for part in upload.parts:
        assert part.offset == (part.number - 1) * part_size
        answer = requests.put(part.url, data=data[part.offset:part.offset + part.size], timeout=60)
        assert answer.status_code == 200, answer.text
        parts.append((part.number, answer.headers["ETag"]))
    return upload.upload_id, parts


def test_multipart_round_trip(storage_backend: Storage) -> None:
    data = payload(2 * MIN_PART_SIZE + 1234)
    upload_id, parts = multipart_upload(storage_backend, "uploads/u1/big", data, MIN_PART_SIZE)
    assert [n for n, _ in parts] == [1, 2, 3]
    assert [k for k, _, _ in storage_backend.list_multipart("uploads/")] == ["uploads/u1/big"]
    info = storage_backend.complete_multipart("uploads/u1/big", upload_id, parts)
    # S3's form on both: md5 of the parts' ETags, "-<parts>" (S3's part ETags are their md5s).
    part_etags = [etag.strip('"') for _, etag in parts]
    if not isinstance(storage_backend, LocalStorage):
        assert part_etags == [hashlib.md5(data[i:i + MIN_PART_SIZE], usedforsecurity=False).hexdigest()
                              for i in range(0, len(data), MIN_PART_SIZE)]
    digests = b"".join(bytes.fromhex(etag) for etag in part_etags)
    assert info.etag == hashlib.md5(digests, usedforsecurity=False).hexdigest() + "-3"
    assert info.size == len(data)
    assert storage_backend.stat("uploads/u1/big").etag == info.etag
    assert hashlib.sha256(b"".join(storage_backend.open("uploads/u1/big"))).digest() == hashlib.sha256(data).digest()
    assert list(storage_backend.list_multipart("uploads/")) == []


def test_multipart_with_part_crc32s(storage_backend: Storage) -> None:
    """Parts bound to their CRC32 (the upload client's default): each PartUrl names the header its
    PUT sends, and completion with the same CRCs gives the object."""
    data = payload(2 * MIN_PART_SIZE + 77, seed=5)
    chunks = [data[i:i + MIN_PART_SIZE] for i in range(0, len(data), MIN_PART_SIZE)]
    crcs = [crc32_b64(zlib.crc32(c)) for c in chunks]
    upload = storage_backend.create_multipart("uploads/u1/crc", size=len(data), part_size=MIN_PART_SIZE,
                                              crc32s=crcs)
    parts = []
    for part, chunk, value in zip(upload.parts, chunks, crcs, strict=True):
        assert part.headers == {CRC32_HEADER: value}
        answer = requests.put(part.url, data=chunk, headers=part.headers, timeout=60)
        assert answer.status_code == 200, answer.text
        parts.append((part.number, answer.headers["ETag"]))
    info = storage_backend.complete_multipart("uploads/u1/crc", upload.upload_id, parts, crc32s=crcs)
    assert info.size == len(data) and b"".join(storage_backend.open("uploads/u1/crc")) == data


def test_s3_signs_the_crc32_and_completes_with_a_composite_checksum(s3_storage_url: str, tmp_path) -> None:
    """What S3/MinIO check (moto does not verify signatures or part checksums): the CRC32 is a
    signed header of each URL, the upload uses CRC32 composite checksums like boto3's upload_file,
    and the object's checksum is the CRC32 of the part CRC32s."""
    import base64

    storage = open_storage(s3_storage_url, storage_settings(tmp_path / "home"))
    data = payload(MIN_PART_SIZE + 5, seed=6)
    chunks = [data[:MIN_PART_SIZE], data[MIN_PART_SIZE:]]
    crcs = [crc32_b64(zlib.crc32(c)) for c in chunks]
    signed = parse_qs(urlsplit(storage.presign_put("files/u/one", size=5, crc32=crcs[0])).query)
    assert signed["X-Amz-SignedHeaders"] == ["content-length;host;x-amz-checksum-crc32"]
    upload = storage.create_multipart("files/u/two", size=len(data), part_size=MIN_PART_SIZE, crc32s=crcs)
    parts = []
    for part, chunk in zip(upload.parts, chunks, strict=True):
        assert parse_qs(urlsplit(part.url).query)["X-Amz-SignedHeaders"] == ["host;x-amz-checksum-crc32"]
        parts.append((part.number, requests.put(part.url, data=chunk, headers=part.headers, timeout=60)
                      .headers["ETag"]))
    storage.complete_multipart("files/u/two", upload.upload_id, parts, crc32s=crcs)
    head = storage.client.head_object(Bucket=storage.bucket, Key="files/u/two", ChecksumMode="ENABLED")
    composite = crc32_b64(zlib.crc32(b"".join(base64.b64decode(c) for c in crcs)))
    # S3 appends "-<parts>" to a composite checksum; moto leaves it off.
    assert head["ChecksumCRC32"].removesuffix("-2") == composite  # not the CRC32 of the whole object


def test_multipart_wrong_etag_refused(storage_backend: Storage) -> None:
    data = payload(MIN_PART_SIZE + 10)
    upload_id, parts = multipart_upload(storage_backend, "uploads/u1/bad", data, MIN_PART_SIZE)
    wrong = [(parts[0][0], "0" * 32), parts[1]]
    with pytest.raises(ValueError):
        storage_backend.complete_multipart("uploads/u1/bad", upload_id, wrong)
    assert not storage_backend.exists("uploads/u1/bad")
    # The upload is still there and completes with the right list.
    assert storage_backend.complete_multipart("uploads/u1/bad", upload_id, parts).size == len(data)


def test_multipart_abort_and_list(storage_backend: Storage) -> None:
    one = storage_backend.create_multipart("uploads/a/one", size=MIN_PART_SIZE + 1, part_size=MIN_PART_SIZE)
    two = storage_backend.create_multipart("uploads/b/two", size=10, part_size=MIN_PART_SIZE)
    assert len(two.parts) == 1 and two.parts[0].size == 10
    listed = list(storage_backend.list_multipart("uploads/"))
    assert [(k, u) for k, u, _ in listed] == [("uploads/a/one", one.upload_id), ("uploads/b/two", two.upload_id)]
    assert all(t > 0 for _, _, t in listed)
    assert [k for k, _, _ in storage_backend.list_multipart("uploads/b/")] == ["uploads/b/two"]

    storage_backend.abort_multipart("uploads/a/one", one.upload_id)
    storage_backend.abort_multipart("uploads/a/one", one.upload_id)  # unknown now: not an error
    assert [k for k, _, _ in storage_backend.list_multipart("uploads/")] == ["uploads/b/two"]
    with pytest.raises(ObjectNotFound):
        storage_backend.complete_multipart("uploads/a/one", one.upload_id, [(1, "x"), (2, "y")])
    storage_backend.abort_multipart("uploads/b/two", two.upload_id)
    assert list(storage_backend.list_multipart("")) == []


def test_multipart_plan_rules(storage_backend: Storage) -> None:
    with pytest.raises(ValueError):
        storage_backend.create_multipart("uploads/x", size=10 * MIB, part_size=MIB)  # parts below 5 MiB
    with pytest.raises(ValueError):
        storage_backend.create_multipart("uploads/x", size=0, part_size=MIN_PART_SIZE)
    assert list(storage_backend.list_multipart("")) == []


def test_put_streams_without_holding_the_object(storage_backend: Storage) -> None:
    size = 64 * MIB
    stream = Endless(size)
    tracemalloc.start()
    try:
        info = storage_backend.put("big/stream", stream, size=size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == size
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB while storing {size / MIB:.0f} MiB"
    md5 = hashlib.md5(usedforsecurity=False)
    for chunk in storage_backend.open("big/stream"):
        md5.update(chunk)
    assert md5.hexdigest() == stream.md5.hexdigest()


def test_open_streams_without_holding_the_object(storage_backend: Storage) -> None:
    size = 24 * MIB
    storage_backend.put("big/read", Endless(size), size=size)
    total = 0
    tracemalloc.start()
    try:
        for chunk in storage_backend.open("big/read"):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB while reading {size / MIB:.0f} MiB"


def test_download_to(storage_backend: Storage, tmp_path: os.PathLike) -> None:
    data = payload(MIB * 2 + 1)
    storage_backend.put("d/x", io.BytesIO(data))
    target = os.path.join(tmp_path, "out.bin")
    info = storage_backend.download_to("d/x", target)
    assert info.size == len(data)
    with open(target, "rb") as fh:
        assert fh.read() == data
