"""Multipart bodies of every shape an inline upload may have, and what parsing one gives, shared
by the tests of the one-pass readers (multipart_mapped, multipart_streamed), which must give
exactly werkzeug's answer for each."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from caesar_faas.errors import ApiError

B = "bOuNdArY-42"
CT = f"multipart/form-data; boundary={B}"
DATA = os.urandom(300_000) + b"\r\n--bOuNdArY-4\r\n--bOuNdArY\r\n\r\n\r\n" + os.urandom(5000)  # near-boundaries inside


def field(name: str, value: bytes) -> bytes:
    return f"--{B}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode() + value + b"\r\n"


def file_part(data: bytes, name: str = "file", filename: str = "a.fits", extra: str = "") -> bytes:
    return (f"--{B}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n{extra}"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"


END = f"--{B}--\r\n".encode()

BODIES: dict[str, tuple[bytes, bool]] = {  # name: (body, of the usual shape: read in one pass)
    "file only": (file_part(DATA) + END, True),
    "tag first": (field("tag", b"run 1") + file_part(DATA) + END, True),
    "tag last": (file_part(DATA) + field("tag", "é ü".encode()) + END, True),
    "repeated tag": (field("tag", b"one") + field("tag", b"two") + file_part(DATA) + END, True),
    "empty file": (file_part(b"") + END, True),
    "epilogue": (file_part(DATA) + END + b"trailing words\r\n", True),
    "close delimiter without CRLF": (file_part(DATA) + END[:-2], True),
    "escaped quote in filename": (file_part(DATA, filename='my \\"best\\".fits') + END, True),
    "non-utf8 tag": (field("tag", b"\xff\xfe") + file_part(DATA) + END, True),
    "utf-8 filename": (file_part(DATA, filename="m31 \u00e9\u202eexe.fits") + END, True),
    "non-utf8 filename": (file_part(DATA).replace(b"a.fits", b"\xe9.fits", 1) + END, False),
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

Parse = Callable[..., tuple[dict[str, str], Any]]


def outcome(parse: Parse, stream: Any, body: bytes, spool_dir: Path, *, max_bytes: int = 10**8,
            length: str | None = "auto") -> tuple[tuple[Any, ...], type | None]:
    """(("stored", fields, filename, bytes, sha256, size) or ("refused", status, code), the spool's
    class); the spool is closed and must then be gone."""
    content_length = str(len(body)) if length == "auto" else length
    try:
        fields, upload = parse(stream, CT, content_length, max_bytes=max_bytes, limit_message="too big",
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
