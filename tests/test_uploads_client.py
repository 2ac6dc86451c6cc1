"""The client's presigned upload flow (caesar_client.uploads), against the real local stack and
against a gateway whose storage fails each part once."""

from __future__ import annotations

import hashlib
import os
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from caesar_client.errors import NotFound, UploadError
from caesar_client.transport import Transport
from caesar_client.uploads import file_part_crc32, file_sha256, sections, upload_presigned
from flask import Flask, jsonify, request

from caesar_faas.checksums import crc32_b64
from caesar_faas.storage import CHUNK, MIN_PART_SIZE
from caesar_faas.storage.base import checksum_headers
from caesar_faas.storage.local import LocalStorage
from caesar_faas.storage.local_http import storage_blueprint
from tests.fixtures.stack import LocalStack
from tests.fixtures.storage import serving, storage_settings
from tests.helpers import free_port, wait_for
from tests.samples import fits_bytes

MIB = 1024 * 1024


def upload_large(url: str, token: str, path: str, **kwargs) -> dict:
    return upload_presigned(Transport(url, token, retries=0), Path(path), **kwargs)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small_part_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack (file:// storage) with S3's smallest part size, so a ~9 MB file is multipart."""
    stack = LocalStack(tmp_path_factory.mktemp("stack"), free_port(), free_port(),
                       extra_env={"CAESAR_PART_SIZE": str(MIN_PART_SIZE)})
    stack.start()
    yield stack
    stack.stop()


@pytest.mark.parametrize("shape", [(1500, 1500), (120, 100)], ids=["multipart", "single"])
def test_upload_large_through_the_local_stack(small_part_stack: LocalStack, tmp_path: Path,
                                              capsys: pytest.CaptureFixture, shape: tuple[int, int]) -> None:
    stack = small_part_stack
    image = tmp_path / "big image.fits"
    image.write_bytes(fits_bytes(shape, seed=3))
    token = stack.token("carol")
    result = upload_large(stack.url, token, str(image), tag="presigned", progress=True)
    file_id = result["uuid"]
    expected_parts = -(-image.stat().st_size // MIN_PART_SIZE)
    assert [p["number"] for p in result["parts"]] == list(range(1, expected_parts + 1))
    assert "100%" in capsys.readouterr().err  # the progress bar reached the end

    client = stack.client("carol")

    def registered():
        answer = client.get(f"{stack.url}/function/files/{file_id}", timeout=10).json()
        return answer if answer.get("state") == "ready" else None

    record = wait_for(registered, timeout=60, message="the upload to be registered through the event path")
    assert record["filename_orig"] == "big image.fits" and record["tag"] == "presigned"
    assert record["sha256"] == sha256(image)
    assert record["shape"] == list(shape)
    content = client.get(f"{stack.url}/function/files/{file_id}/content", timeout=30)
    assert hashlib.sha256(content.content).hexdigest() == sha256(image)
    # Another user cannot see it.
    assert stack.client("mallory").get(f"{stack.url}/function/files/{file_id}", timeout=10).status_code == 404


@pytest.mark.parametrize("threads", [1, 3])
def test_part_crc32s_and_sha256_match_zlib_and_hashlib(tmp_path: Path, threads: int) -> None:
    # Parts of uneven sizes, more than one read block each, computed a few at a time.
    data = os.urandom(5 * 1024 * 1024 + 12345)
    image = tmp_path / "parts.bin"
    image.write_bytes(data)
    planned = sections(len(data), 2 * 1024 * 1024 + 7)
    assert len(planned) == 3
    expected = [crc32_b64(zlib.crc32(data[offset:offset + size])) for offset, size in planned]
    assert file_part_crc32(image, planned, threads=threads) == expected
    assert file_sha256(image) == hashlib.sha256(data).hexdigest()


def test_part_crc32_of_a_file_shorter_than_planned_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "short.bin"
    image.write_bytes(b"x" * 1000)
    with pytest.raises(UploadError, match="shorter than planned"):
        file_part_crc32(image, [(0, 600), (600, 600)], threads=2)


class FlakyGateway:
    """The upload API of docs/large-uploads.md on a real LocalStorage, whose signed storage
    endpoint answers 503 to the first attempt of every PUT (after reading the body)."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = storage_settings(root, public_url=self.url)
        self.storage = LocalStorage(settings.objects_dir, settings=settings)
        self.attempts: Counter[str] = Counter()
        self.completed: list[dict] = []
        self.uploads: dict[str, dict] = {}
        self.app = Flask("flaky")
        self.app.register_blueprint(storage_blueprint(self.storage))
        self.app.before_request(self.flaky)
        self.app.get("/function/upload")(lambda: jsonify({"part_size": MIN_PART_SIZE}))
        self.app.post("/function/upload")(self.create)
        self.app.post("/function/upload/<file_id>/complete")(self.complete)

    def flaky(self):
        if request.method == "PUT":
            self.attempts[request.args.get("part", "single")] += 1
            if self.attempts[request.args.get("part", "single")] == 1:
                while request.stream.read(CHUNK):
                    pass
                return jsonify({"error": "unavailable", "status": "try again"}), 503
        return None

    def create(self):
        body = request.get_json()
        assert request.headers["Authorization"] == "Bearer tok"
        file_id = str(uuid.uuid4())
        key = f"files/u/{file_id}"
        single = multipart = None
        crc32s = body.get("part_crc32")
        if body["size"] <= body["part_size"]:
            crc32 = crc32s[0] if crc32s else None
            single = {"url": self.storage.presign_put(key, size=body["size"], expires=60, crc32=crc32),
                      "headers": checksum_headers(crc32)}
        else:
            mp = self.storage.create_multipart(key, size=body["size"], part_size=body["part_size"], crc32s=crc32s)
            multipart = {"upload_id": mp.upload_id, "part_size": mp.part_size,
                         "parts": [{"number": p.number, "url": p.url, "offset": p.offset, "size": p.size,
                                    "headers": p.headers} for p in mp.parts]}
        self.uploads[file_id] = {"key": key, "multipart": multipart, "request": body}
        return jsonify({"uuid": file_id, "status": "pending", "expires": "2030-01-01T00:00:00Z", "single": single,
                        "multipart": multipart, "complete_url": f"/function/upload/{file_id}/complete"}), 201

    def complete(self, file_id: str):
        upload = self.uploads[file_id]
        parts = request.get_json()["parts"]
        self.completed.append(parts)
        upload["sha256"] = request.get_json().get("sha256")
        if upload["multipart"]:
            info = self.storage.complete_multipart(upload["key"], upload["multipart"]["upload_id"],
                                                   [(p["number"], p["etag"]) for p in parts])
        else:
            info = self.storage.stat(upload["key"])
        return jsonify({"uuid": file_id, "state": "pending", "bytes": info.size, "etag": info.etag})


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[FlakyGateway]:
    gateway = FlakyGateway(tmp_path / "home")
    with serving(gateway.app, gateway.port):
        yield gateway


def test_each_part_is_retried(flaky: FlakyGateway, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(2 * MIN_PART_SIZE + 999))
    result = upload_large(flaky.url, "tok", str(source), tag="t", progress=False, workers=2)
    assert flaky.attempts == Counter({"1": 2, "2": 2, "3": 2})
    data = source.read_bytes()
    crcs = [crc32_b64(zlib.crc32(data[i:i + MIN_PART_SIZE])) for i in range(0, len(data), MIN_PART_SIZE)]
    # The part size the gateway answered on GET, each part's CRC32 (checked by the signed endpoint
    # on every attempt), and the sha256 only with the completion.
    upload = flaky.uploads[result["uuid"]]
    assert upload["request"] == {"filename": "data.bin", "size": len(data), "part_size": MIN_PART_SIZE,
                                 "part_crc32": crcs, "tag": "t"}
    assert upload["sha256"] == sha256(source)
    assert result["etag"].endswith("-3") and result["bytes"] == source.stat().st_size
    assert flaky.storage.read_bytes(f"files/u/{result['uuid']}") == source.read_bytes()
    assert [p["number"] for p in flaky.completed[0]] == [1, 2, 3]


def test_single_put_retried_and_retries_exhausted(flaky: FlakyGateway, tmp_path: Path) -> None:
    source = tmp_path / "small.bin"
    source.write_bytes(b"small file" * 1000)
    result = upload_large(flaky.url, "tok", str(source), progress=False)
    assert flaky.attempts["single"] == 2 and flaky.completed == [[]]
    assert flaky.storage.read_bytes(f"files/u/{result['uuid']}") == source.read_bytes()

    flaky.attempts.clear()
    with pytest.raises(UploadError) as failed:
        upload_large(flaky.url, "tok", str(source), progress=False, retries=0)
    assert failed.value.status == 503 and flaky.attempts["single"] == 1


def test_refused_url_is_not_retried(flaky: FlakyGateway, tmp_path: Path) -> None:
    source = tmp_path / "small.bin"
    source.write_bytes(b"x" * 100)
    flaky.attempts["single"] = 1  # no injected failure for this one
    original = flaky.storage.presign_put
    flaky.storage.presign_put = lambda key, size, expires, crc32: original(key, size=size, expires=-10, crc32=crc32)
    with pytest.raises(UploadError) as failed:
        upload_large(flaky.url, "tok", str(source), progress=False, retries=5)
    assert failed.value.status == 403 and failed.value.body["error"] == "forbidden"
    assert flaky.attempts["single"] == 2  # one real attempt, no retries
    assert flaky.completed == []


def test_create_errors_are_reported(flaky: FlakyGateway, tmp_path: Path) -> None:
    source = tmp_path / "small.bin"
    source.write_bytes(b"x")
    with pytest.raises(NotFound) as failed:
        upload_large(flaky.url + "/nowhere", "tok", str(source), progress=False)
    assert failed.value.status == 404
