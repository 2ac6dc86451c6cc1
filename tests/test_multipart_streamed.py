"""Inline uploads read from a stream in one pass (caesar_faas/multipart_streamed.py) give what
werkzeug's parser gives, for every body of tests/multipart_bodies.py, however the stream hands
its bytes over: the same fields, file name, bytes and sha256, or the same refusal, and no spool
left behind. A body of the usual shape is spooled by the streamed reader itself (StreamedSpool),
any other by werkzeug (HashingSpool), which then reads the bytes replayed."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from werkzeug.exceptions import ClientDisconnected

from caesar_faas.multipart import HashingSpool, UploadedFile, parse_upload, parse_with_werkzeug
from caesar_faas.multipart_streamed import StreamedSpool, parse_streamed
from tests import multipart_bodies as bodies
from tests.multipart_bodies import BODIES, DATA, END, B, field, file_part


class Trickle(io.RawIOBase):
    """A socket-like stream: at most `step` bytes per call, then (optionally) a disconnect."""

    def __init__(self, data: bytes, step: int, *, cut_at: int | None = None) -> None:
        super().__init__()
        self._data, self._step, self._pos, self._cut_at = data, step, 0, cut_at

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._cut_at is not None and self._pos >= self._cut_at:
            raise ClientDisconnected()
        n = min(len(buffer), self._step, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


class ReadOnly:
    """A stream with read() alone (no readinto)."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(n)


def reading(read_size: int) -> bodies.Parse:
    """parse_upload's streamed branch with its read size made small."""

    def parse(stream: Any, content_type: str, content_length: str | None, *, max_bytes: int, limit_message: str,
              spool_dir: str) -> tuple[dict[str, str], UploadedFile]:
        found = parse_streamed(stream, B.encode(), max_bytes=max_bytes, spool_dir=spool_dir, read_size=read_size)
        if isinstance(found, tuple):
            fields, filename, spool = found
            return fields, UploadedFile(filename=filename, spool=spool)
        return parse_with_werkzeug(found, content_type, content_length, max_bytes=max_bytes,
                                   limit_message=limit_message, spool_dir=spool_dir)

    return parse


def werkzeugs(body: bytes, spool_dir: Path, **kw: Any) -> tuple[Any, ...]:
    return bodies.outcome(parse_with_werkzeug, io.BytesIO(body), body, spool_dir, **kw)[0]


STREAMS = {
    "in memory": lambda body: io.BytesIO(body),
    "a socket's pace": lambda body: Trickle(body, 1500),
    "read() alone": ReadOnly,
}


@pytest.mark.parametrize("stream", list(STREAMS))
@pytest.mark.parametrize("name", list(BODIES))
def test_streamed_or_not_the_result_is_werkzeugs(name: str, stream: str, tmp_path: Path) -> None:
    body, usual = BODIES[name]
    expected = werkzeugs(body, tmp_path)
    got, spooled_by = bodies.outcome(parse_upload, STREAMS[stream](body), body, tmp_path)
    assert got == expected
    if expected[0] == "stored":
        assert spooled_by is (StreamedSpool if usual else HashingSpool)
        assert expected[4] == hashlib.sha256(expected[3]).hexdigest() and expected[5] == len(expected[3])
    assert list(tmp_path.iterdir()) == []  # no spool left behind either way


@pytest.mark.parametrize("read_size", [1000, 65536])
@pytest.mark.parametrize("name", list(BODIES))
def test_small_reads_give_werkzeugs_result(name: str, read_size: int, tmp_path: Path) -> None:
    body, usual = BODIES[name]
    got, spooled_by = bodies.outcome(reading(read_size), Trickle(body, 777), body, tmp_path)
    assert got == werkzeugs(body, tmp_path)
    assert spooled_by is (StreamedSpool if usual else HashingSpool) or got[0] == "refused"
    assert list(tmp_path.iterdir()) == []


def test_the_closing_boundary_across_every_buffer_edge(tmp_path: Path) -> None:
    # The file's bytes end, and near-boundaries sit, at every offset of a buffer in turn.
    data = os.urandom(150) + b"\r\n--" + B[:-1].encode() + os.urandom(60) + b"\r\n-" + os.urandom(40)
    body = field("tag", b"edge") + file_part(data) + END
    for read_size in range(1, 90):
        got, spooled_by = bodies.outcome(reading(read_size), io.BytesIO(body), body, tmp_path)
        assert got == ("stored", {"tag": "edge"}, "a.fits", data, hashlib.sha256(data).hexdigest(), len(data)), \
            read_size
        assert spooled_by is StreamedSpool


def test_a_body_going_on_past_the_limit_is_werkzeugs_to_refuse(tmp_path: Path) -> None:
    # The declared length is under the limit; the stream is not (only a stream that lies does
    # this: the gateway's ends at its Content-Length). Nothing past the limit is spooled here.
    body, _ = BODIES["file only"]
    limit = len(body) - 100
    got = bodies.outcome(parse_upload, io.BytesIO(body), body, tmp_path, max_bytes=limit, length=str(limit))[0]
    assert got == werkzeugs(body, tmp_path, max_bytes=limit, length=str(limit))
    assert got == ("refused", 413, "too_large_for_inline_upload")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cut_at", [10, len(field("tag", b"x")) + 200, 200_000])
def test_a_client_that_leaves_mid_body_gets_400_and_nothing_stays(cut_at: int, tmp_path: Path) -> None:
    body = field("tag", b"x") + file_part(DATA) + END
    got = bodies.outcome(parse_upload, Trickle(body, 4096, cut_at=cut_at), body, tmp_path)[0]
    assert got == ("refused", 400, "invalid_multipart")
    assert list(tmp_path.iterdir()) == []


def test_only_a_body_of_known_length_is_streamed(tmp_path: Path) -> None:
    body, _ = BODIES["tag first"]
    got, spooled_by = bodies.outcome(parse_upload, io.BytesIO(body), body, tmp_path, length=None)
    assert got[0] == "stored" and got[3] == DATA and spooled_by is HashingSpool
    got, spooled_by = bodies.outcome(parse_upload, io.BytesIO(body), body, tmp_path)
    assert got[0] == "stored" and got[3] == DATA and spooled_by is StreamedSpool
