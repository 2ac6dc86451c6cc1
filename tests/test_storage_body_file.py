"""file:// storage reading a body the server holds in a file (caesar_faas/bodyfile.py): a
signed PUT and a multipart part are copied kernel-side, parts straight into the object being
assembled (storage/local_parts.py). The same answers as from a stream; refusals store nothing
and leave what was stored alone; and the whole flow through a real waitress server, which hands
these bodies over in its own file, and as the gateway runs it, where the bodies of large parts
are read off the connection into place."""

from __future__ import annotations

import io
import os
import tempfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests
from flask import Flask
from waitress.server import create_server

from caesar_faas.checksums import crc32_b64
from caesar_faas.local.gateway import streamed_body
from caesar_faas.serving import make_server
from caesar_faas.storage import MIN_PART_SIZE, ObjectNotFound
from caesar_faas.storage.base import CRC32_HEADER, BadDigest
from caesar_faas.storage.local import LocalStorage
from caesar_faas.storage.local_http import storage_blueprint
from tests.fixtures.storage import storage_settings


def crc(data: bytes) -> str:
    return crc32_b64(zlib.crc32(data))


def body_file(data: bytes) -> IO[bytes]:
    """A body as waitress hands over a large one: an unnamed temp file, rewound."""
    fh = tempfile.TemporaryFile()
    fh.write(data)
    fh.flush()
    fh.seek(0)
    return fh


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects", settings=storage_settings(tmp_path / "home"))


def leftovers(storage: LocalStorage) -> list[str]:
    return sorted(os.listdir(storage.root / ".caesar" / "tmp"))


def test_signed_put_from_a_body_file(storage: LocalStorage) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    with body_file(data) as fh:
        info = storage.signed_put("files/u/a", fh, size=len(data), crc32=crc(data))
    assert storage.read_bytes("files/u/a") == data and info.etag == storage.stat("files/u/a").etag
    for refused, size, error in [(data[:-1] + b"x", len(data), BadDigest),  # damaged
                                 (data[:-5], len(data), ValueError),  # short
                                 (data + b"more", len(data), ValueError)]:  # long
        with body_file(refused) as fh, pytest.raises(error):
            storage.signed_put("files/u/a", fh, size=size, crc32=crc(data) if error is BadDigest else None)
    with body_file(data) as fh, pytest.raises(ValueError, match="longer than the allowed"):
        storage.signed_put("jobs/u/j/out.csv", fh, max_size=len(data) - 1)
    assert storage.read_bytes("files/u/a") == data and storage.stat("files/u/a").etag == info.etag
    assert not storage.exists("jobs/u/j/out.csv") and leftovers(storage) == []


def test_parts_from_body_files_and_streams_answer_the_same(storage: LocalStorage) -> None:
    data = os.urandom(2 * MIN_PART_SIZE + 123)
    chunks = [data[:MIN_PART_SIZE], data[MIN_PART_SIZE:2 * MIN_PART_SIZE], data[2 * MIN_PART_SIZE:]]
    upload = storage.create_multipart("files/u/m", size=len(data), part_size=MIN_PART_SIZE,
                                      crc32s=[crc(c) for c in chunks])
    etags = {}
    for number in (3, 1, 2):  # any order
        chunk = chunks[number - 1]
        with body_file(chunk) as fh:
            etags[number] = storage.put_part("files/u/m", upload.upload_id, number, fh, size=len(chunk),
                                             crc32=crc(chunk))
        # The same bytes again from a stream replace the part with the same ETag (a retry).
        assert storage.put_part("files/u/m", upload.upload_id, number, io.BytesIO(chunk), size=len(chunk),
                                crc32=crc(chunk)) == etags[number]
    assert storage.list_parts("files/u/m", upload.upload_id) == [(n, etags[n], len(chunks[n - 1])) for n in (1, 2, 3)]
    info = storage.complete_multipart("files/u/m", upload.upload_id, [(n, etags[n]) for n in (1, 2, 3)])
    assert info.etag.endswith("-3") and storage.read_bytes("files/u/m") == data
    assert leftovers(storage) == [] and os.listdir(storage.root / ".caesar" / "multipart") == []


def test_a_refused_part_leaves_the_stored_one_alone(storage: LocalStorage) -> None:
    data = os.urandom(MIN_PART_SIZE + 10)
    first, second = data[:MIN_PART_SIZE], data[MIN_PART_SIZE:]
    upload = storage.create_multipart("files/u/r", size=len(data), part_size=MIN_PART_SIZE)
    with body_file(first) as fh:
        etag = storage.put_part("files/u/r", upload.upload_id, 1, fh, size=len(first))
    damaged = bytes([first[0] ^ 1]) + first[1:]  # always differs (a leading zero byte made b"\0" + ... equal)
    for body, signed in [(damaged, crc(first)), (first[:-1], None), (first + b"!", None)]:
        for stream in (body_file(body), io.BytesIO(body)):
            with stream, pytest.raises((BadDigest, ValueError)):
                storage.put_part("files/u/r", upload.upload_id, 1, stream, size=len(first), crc32=signed)
    assert storage.list_parts("files/u/r", upload.upload_id) == [(1, etag, len(first))]
    with pytest.raises(ValueError, match="part 2 was never uploaded"):
        storage.complete_multipart("files/u/r", upload.upload_id, [(1, etag), (2, "0" * 32)])
    with body_file(second) as fh:
        last = storage.put_part("files/u/r", upload.upload_id, 2, fh, size=len(second))
    with pytest.raises(ValueError, match="ETag or size does not match"):
        storage.complete_multipart("files/u/r", upload.upload_id, [(1, "f" * 32), (2, last)])
    storage.complete_multipart("files/u/r", upload.upload_id, [(1, etag), (2, last)])
    assert storage.read_bytes("files/u/r") == data
    with body_file(second) as fh, pytest.raises(ObjectNotFound):  # the upload is finished
        storage.put_part("files/u/r", upload.upload_id, 2, fh, size=len(second))
    assert storage.read_bytes("files/u/r") == data


def test_racing_retries_of_one_part(storage: LocalStorage) -> None:
    data = os.urandom(MIN_PART_SIZE)
    upload = storage.create_multipart("files/u/race", size=len(data), part_size=MIN_PART_SIZE)
    answers: list[str] = []

    def put() -> None:
        with body_file(data) as fh:
            answers.append(storage.put_part("files/u/race", upload.upload_id, 1, fh, size=len(data),
                                            crc32=crc(data)))

    threads = [threading.Thread(target=put) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(answers)) == 1 and len(answers) == 4
    storage.complete_multipart("files/u/race", upload.upload_id, [(1, answers[0])])
    assert storage.read_bytes("files/u/race") == data


class OnlyReads(io.RawIOBase):
    """A body read once, with no file behind it (as the gateway streams one off its socket)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def test_a_part_not_stored_yet_is_received_into_place(storage: LocalStorage) -> None:
    data = os.urandom(MIN_PART_SIZE + 77)
    first, second = data[:MIN_PART_SIZE], data[MIN_PART_SIZE:]
    upload = storage.create_multipart("files/u/d", size=len(data), part_size=MIN_PART_SIZE,
                                      crc32s=[crc(first), crc(second)])
    damaged = bytes([first[0] ^ 1]) + first[1:]
    for body, error in [(damaged, BadDigest), (first[:-1], ValueError), (first + b"!", ValueError)]:
        with pytest.raises(error):
            storage.put_part("files/u/d", upload.upload_id, 1, OnlyReads(body), size=len(first), crc32=crc(first))
        assert storage.list_parts("files/u/d", upload.upload_id) == []  # missing, not half-stored
    with body_file(first) as fh:  # the ETag a part gets is the same whichever way it came
        expected = storage.put_part("files/u/x", storage.create_multipart(
            "files/u/x", size=len(data), part_size=MIN_PART_SIZE).upload_id, 1, fh, size=len(first))
    etags = [storage.put_part("files/u/d", upload.upload_id, n, OnlyReads(chunk), size=len(chunk), crc32=crc(chunk))
             for n, chunk in ((2, second), (1, first))][::-1]
    assert etags[0] == expected
    assert storage.list_parts("files/u/d", upload.upload_id) == [(1, etags[0], len(first)), (2, etags[1], len(second))]
    storage.complete_multipart("files/u/d", upload.upload_id, [(1, etags[0]), (2, etags[1])])
    assert storage.read_bytes("files/u/d") == data and leftovers(storage) == []


@pytest.fixture(params=["buffered", "streamed"])
def waitress_storage(storage: LocalStorage, request: pytest.FixtureRequest) -> Iterator[tuple[LocalStorage, str]]:
    """The storage's routes under waitress: as waitress buffers bodies, and as the gateway runs
    it (part bodies read off the connection: serving_stream.py)."""
    app = Flask("storage-under-waitress")
    app.register_blueprint(storage_blueprint(lambda: storage))
    if request.param == "streamed":
        server = make_server(app, streamed=streamed_body, host="127.0.0.1", port=0, threads=4)
    else:
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield storage, f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)


def test_presigned_flow_through_waitress(waitress_storage: tuple[LocalStorage, str]) -> None:
    storage, base = waitress_storage

    def url(signed: str) -> str:
        return base + signed[signed.index("/storage/"):]

    data = os.urandom(MIN_PART_SIZE + 4321)
    chunks = [data[:MIN_PART_SIZE], data[MIN_PART_SIZE:]]
    upload = storage.create_multipart("uploads/u/w", size=len(data), part_size=MIN_PART_SIZE,
                                      crc32s=[crc(c) for c in chunks])
    first = upload.parts[0]
    damaged = requests.put(url(first.url), data=b"\1" + chunks[0][1:], headers=first.headers, timeout=60)
    assert damaged.status_code == 400 and damaged.json()["error"] == "bad_digest"  # before it was ever stored
    assert storage.list_parts("uploads/u/w", upload.upload_id) == []
    parts = []
    for part, chunk in zip(upload.parts, chunks, strict=True):
        answer = requests.put(url(part.url), data=chunk, headers=part.headers, timeout=60)
        assert answer.status_code == 200, answer.text
        parts.append((part.number, answer.headers["ETag"]))
    damaged = requests.put(url(upload.parts[0].url), data=b"\1" + chunks[0][1:], headers=upload.parts[0].headers,
                           timeout=60)
    assert damaged.status_code == 400 and damaged.json()["error"] == "bad_digest"
    storage.complete_multipart("uploads/u/w", upload.upload_id, parts)
    assert storage.read_bytes("uploads/u/w") == data
    single = os.urandom(2 * 1024 * 1024)
    answer = requests.put(url(storage.presign_put("uploads/u/s", size=len(single), crc32=crc(single))), data=single,
                          headers={CRC32_HEADER: crc(single)}, timeout=60)
    assert answer.status_code == 200 and storage.read_bytes("uploads/u/s") == single
    short = requests.put(url(storage.presign_put("uploads/u/t", size=len(single))), data=single[:-1], timeout=60)
    assert short.status_code in (400, 403) and not storage.exists("uploads/u/t")
