"""Inline uploads read in place (caesar_faas/multipart_mapped.py) give what werkzeug's stream
parser gives, for every body: the same fields, file name, bytes and sha256, or the same
refusal. Each body is parsed twice, by werkzeug's parser alone and from a file (the body as
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
from caesar_faas.multipart import HashingSpool, parse_upload, parse_with_werkzeug
from caesar_faas.multipart_mapped import CopiedSpool
from caesar_faas.multipart_streamed import StreamedSpool
from tests import multipart_bodies as bodies
from tests.multipart_bodies import BODIES, CT, DATA, END, field, file_part


def outcome(stream: Any, body: bytes, spool_dir: Path, **kw: Any) -> tuple[tuple[Any, ...], type | None]:
    return bodies.outcome(parse_upload, stream, body, spool_dir, **kw)


def werkzeugs(body: bytes, spool_dir: Path, **kw: Any) -> tuple[Any, ...]:
    return bodies.outcome(parse_with_werkzeug, io.BytesIO(body), body, spool_dir, **kw)[0]


def as_file(body: bytes) -> Any:
    fh = tempfile.TemporaryFile()  # what waitress gives the application for a large body
    fh.write(body)
    fh.flush()
    fh.seek(0)
    return fh


@pytest.mark.parametrize("name", list(BODIES))
def test_read_in_place_or_not_the_result_is_werkzeugs(name: str, tmp_path: Path) -> None:
    body, in_place = BODIES[name]
    expected = werkzeugs(body, tmp_path)
    with as_file(body) as fh:
        got, spooled_by = outcome(fh, body, tmp_path)
    assert got == expected
    if expected[0] == "stored":
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
        expected = werkzeugs(body, tmp_path, max_bytes=len(body) - 1, length=length)
        with as_file(body) as fh:
            assert outcome(fh, body, tmp_path, max_bytes=len(body) - 1, length=length)[0] == expected
        assert expected == ("refused", 413, "too_large_for_inline_upload")
    with as_file(body) as fh:  # a file that is not the declared body: not read in place, but streamed
        got, spool = outcome(fh, body, tmp_path, length=str(len(body) + 5))
    assert spool is StreamedSpool and got[3] == DATA
    with as_file(b"x" * 10 + body) as fh:
        fh.seek(10)  # partly read already: not read in place, but streamed
        got, spool = outcome(fh, body, tmp_path)
    assert spool is StreamedSpool and got[3] == DATA


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
                      "in_place": type(upload.spool) is CopiedSpool}
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
