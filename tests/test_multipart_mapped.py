"""Inline uploads read in place (caesar_faas/multipart_mapped.py) give what werkzeug's stream
parser gives, for every body: the same fields, file name, bytes and sha256, or the same
refusal. Each body is parsed twice, from memory (werkzeug's parser) and from a file (the body as
waitress hands over a large one: mapped when it has the usual shape, werkzeug otherwise); and a
real waitress server hands a large body to the mapped parser."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waitress.server import create_server

from caesar_faas.errors import ApiError
from caesar_faas.multipart import HashingSpool, parse_upload
from caesar_faas.multipart_mapped import CopiedSpool

B = "bOuNdArY-42"
CT = f"multipart/form-data; boundary={B}"
DATA = os.urandom(300_000) + b"\r\n--bOuNdArY-4\r\n--bOuNdArY\r\n\r\n\r\n" + os.urandom(5000)  # near-boundaries inside


def field(name: str, value: bytes) -> bytes:
    return f"--{B}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode() + value + b"\r\n"


def file_part(data: bytes, name: str = "file", filename: str = "a.fits", extra: str = "") -> bytes:
    return (f"--{B}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n{extra}"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"


END = f"--{B}--\r\n".encode()

BODIES: dict[str, tuple[bytes, bool]] = {  # name: (body, read in place)
    "file only": (file_part(DATA) + END, True),
    "tag first": (field("tag", b"run 1") + file_part(DATA) + END, True),
    "tag last": (file_part(DATA) + field("tag", "é ü".encode()) + END, True),
    "repeated tag": (field("tag", b"one") + field("tag", b"two") + file_part(DATA) + END, True),
    "empty file": (file_part(b"") + END, True),
    "epilogue": (file_part(DATA) + END + b"trailing words\r\n", True),
    "close delimiter without CRLF": (file_part(DATA) + END[:-2], True),
    "escaped quote in filename": (file_part(DATA, filename='my \\"best\\".fits') + END, True),
    "non-utf8 tag": (field("tag", b"\xff\xfe") + file_part(DATA) + END, True),
    "preamble": (b"a preamble\r\n" + file_part(DATA) + END, False),
    "LF line breaks": (file_part(DATA).replace(b"\r\n", b"\n", 3) + END, False),
    "no file": (field("tag", b"x") + END, False),
    "empty filename": (file_part(DATA, filename="") + END, False),
    "two files": (file_part(DATA) + file_part(b"second") + END, False),
    "another file field too": (file_part(b"other", name="other") + file_part(DATA) + END, False),
    "truncated": (file_part(DATA)[:-1000], False),
    "no close delimiter": (file_part(DATA), False),
    "garbage after a delimiter": (file_part(DATA) + f"--{B}xx\r\n".encode() + END, False),
    "huge part headers": (file_part(DATA, extra="X-Pad: " + "p" * 20_000 + "\r\n") + END, False),
    "attachment, not form-data": (file_part(DATA).replace(b"form-data", b"attachment", 1) + END, False),
    "not a form": (b"just bytes", False),
}


def outcome(stream: Any, body: bytes, spool_dir: Path, *, max_bytes: int = 10**8,
            length: str | None = "auto") -> tuple[Any, ...]:
    content_length = str(len(body)) if length == "auto" else length
    try:
        fields, upload = parse_upload(stream, CT, content_length, max_bytes=max_bytes, limit_message="too big",
                                      spool_dir=str(spool_dir))
    except ApiError as exc:
        return ("refused", exc.http_status, exc.code), None
    try:
        upload.spool.flush()
        data = Path(upload.path).read_bytes()
        return ("stored", fields, upload.filename, data, upload.sha256, upload.size), type(upload.spool)
    finally:
        upload.spool.close()
        assert not Path(upload.path).exists()


def as_file(body: bytes) -> Any:
    fh = tempfile.TemporaryFile()  # what waitress gives the application for a large body
    fh.write(body)
    fh.flush()
    fh.seek(0)
    return fh


@pytest.mark.parametrize("name", list(BODIES))
def test_read_in_place_or_not_the_result_is_werkzeugs(name: str, tmp_path: Path) -> None:
    body, in_place = BODIES[name]
    expected, streamed_by = outcome(io.BytesIO(body), body, tmp_path)
    with as_file(body) as fh:
        got, spooled_by = outcome(fh, body, tmp_path)
    assert got == expected
    if expected[0] == "stored":
        assert streamed_by is HashingSpool
        assert spooled_by is (CopiedSpool if in_place else HashingSpool)
        data = expected[3]
        assert expected[4] == hashlib.sha256(data).hexdigest() and expected[5] == len(data)
    assert list(tmp_path.iterdir()) == []  # no spool left behind either way


def test_the_usual_bodies_store_what_was_sent(tmp_path: Path) -> None:
    body, _ = BODIES["tag last"]
    with as_file(body) as fh:
        (state, fields, filename, data, sha256, size), spool = outcome(fh, body, tmp_path)
    assert (state, fields, filename, spool) == ("stored", {"tag": "é ü"}, "a.fits", CopiedSpool)
    assert data == DATA and sha256 == hashlib.sha256(DATA).hexdigest() and size == len(DATA)


def test_limits_and_lengths_apply_to_a_body_in_a_file(tmp_path: Path) -> None:
    body, _ = BODIES["file only"]
    for length in (None, str(len(body))):  # over the limit, with or without a Content-Length
        expected = outcome(io.BytesIO(body), body, tmp_path, max_bytes=len(body) - 1, length=length)[0]
        with as_file(body) as fh:
            assert outcome(fh, body, tmp_path, max_bytes=len(body) - 1, length=length)[0] == expected
        assert expected == ("refused", 413, "too_large_for_inline_upload")
    with as_file(body) as fh:  # a file that is not the declared body: not read in place
        got, spool = outcome(fh, body, tmp_path, length=str(len(body) + 5))
    assert spool is HashingSpool and got[3] == DATA
    with as_file(b"x" * 10 + body) as fh:
        fh.seek(10)  # partly read already: not read in place
        got, spool = outcome(fh, body, tmp_path)
    assert spool is HashingSpool and got[3] == DATA


@pytest.fixture
def waitress_upload_server(tmp_path: Path) -> Iterator[int]:
    """A real waitress (its default 512 KiB in-memory limit) whose app parses the upload."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            fields, upload = parse_upload(environ["wsgi.input"], environ["CONTENT_TYPE"],
                                          environ.get("CONTENT_LENGTH"), max_bytes=10**8, limit_message="too big",
                                          spool_dir=str(tmp_path))
        except ApiError as exc:
            answer = {"error": exc.code}
        else:
            answer = {"fields": fields, "sha256": upload.sha256, "size": upload.size,
                      "in_place": isinstance(upload.spool, CopiedSpool)}
            upload.spool.close()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        server.close()
        thread.join(timeout=10)


def post(port: int, body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/", body=body, headers={"Content-Type": CT, **(headers or {})})
        answer = conn.getresponse()
        assert answer.status == 200
        return dict(json.loads(answer.read()))
    finally:
        conn.close()


def test_waitress_hands_a_large_body_over_in_a_file_that_is_read_in_place(waitress_upload_server: int) -> None:
    data = os.urandom(3 * 1024 * 1024) + DATA
    body = field("tag", b"t") + file_part(data) + END
    assert post(waitress_upload_server, body) == {"fields": {"tag": "t"}, "sha256": hashlib.sha256(data).hexdigest(),
                                                  "size": len(data), "in_place": True}
    small = field("tag", b"t") + file_part(b"tiny") + END  # waitress keeps it in memory: streamed
    assert post(waitress_upload_server, small) == {"fields": {"tag": "t"}, "sha256": hashlib.sha256(b"tiny").hexdigest(),
                                                   "size": 4, "in_place": False}
    # A chunked body (no Content-Length) is decoded into waitress's file, then read in place too.
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                      for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
    assert post(waitress_upload_server, chunks, {"Transfer-Encoding": "chunked"}) == \
        {"fields": {"tag": "t"}, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "in_place": True}
    small_chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)  # streamed, up to its end
    assert post(waitress_upload_server, small_chunked, {"Transfer-Encoding": "chunked"})["size"] == 4
