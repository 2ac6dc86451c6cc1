"""Streaming multipart/form-data parsing for inline uploads.

The file part is written to a temporary file while its sha256 and size are computed, in one
pass and in chunks, so a 256 MiB upload never sits in memory as a whole and is never read back
to hash it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.http import parse_options_header

from .bodyfile import body_file
from .checksums import ParallelDigests
from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from .multipart_mapped import CopiedSpool, parse_mapped


class HashingSpool:
    """A temp file that hashes what is written to it: the sha256 on its own thread, beside the
    writes (checksums.ParallelDigests). close() removes the file unless it was handed over
    (moved into storage, see files.store_upload)."""

    def __init__(self, directory: str | None) -> None:
        fd, self.name = tempfile.mkstemp(dir=directory, prefix=".upload-")
        self.file: IO[bytes] = os.fdopen(fd, "w+b", buffering=0)  # chunks are large: no copy into a buffer
        self.digests = ParallelDigests(sha256=hashlib.sha256())
        self.size = 0

    def write(self, data: bytes) -> int:
        data = bytes(data)  # the digests' threads must see these bytes, not a buffer reused meanwhile
        self.digests.feed(data)
        self.size += len(data)
        view, written = memoryview(data), 0
        while written < len(data):  # a raw file may write less than asked
            written += self.file.write(view[written:]) or 0
        return written

    def sha256_hex(self) -> str:
        return self.digests.hexdigest("sha256")

    def close(self) -> None:
        self.digests.close()
        self.file.close()
        try:
            os.unlink(self.name)
        except FileNotFoundError:
            pass  # handed over to the storage (renamed), or closed twice

    def __getattr__(self, name: str) -> Any:  # seek, read, tell, flush ...
        return getattr(self.file, name)


@dataclass
class UploadedFile:
    filename: str
    spool: HashingSpool | CopiedSpool

    @property
    def path(self) -> str:
        return self.spool.name

    @property
    def sha256(self) -> str:
        return self.spool.sha256_hex()

    @property
    def size(self) -> int:
        return self.spool.size


def parse_upload(stream: BinaryIO, content_type: str, content_length: str | None, *, max_bytes: int,
                 limit_message: str, spool_dir: str | None = None) -> tuple[dict[str, str], UploadedFile]:
    """Fields and the `file` part of a multipart body. 415 when not multipart, 400 without a
    file part, 413 over max_bytes (checked on Content-Length first, then while reading)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the file as multipart/form-data with a field named 'file'",
                                   code="unsupported_media_type")
    if content_length and content_length.isdigit() and int(content_length) > max_bytes:
        raise PayloadTooLarge(limit_message, code="too_large_for_inline_upload")
    fd = body_file(stream, content_length)
    if fd is not None:  # the server holds the body in a file: read it in place (multipart_mapped)
        mapped = parse_mapped(fd, _boundary(content_type), max_bytes=max_bytes, spool_dir=spool_dir)
        if mapped is not None:
            fields, filename, copied = mapped
            return fields, UploadedFile(filename=filename, spool=copied)
    spools: list[HashingSpool] = []

    def factory(total_content_length: Any, content_type: Any, filename: Any, content_length: Any = None) -> Any:
        spool = HashingSpool(spool_dir)
        spools.append(spool)
        return spool

    environ = {
        "wsgi.input": stream,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": content_length or "",
        "REQUEST_METHOD": "POST",
        # The stream ends with the body (the server decoded a chunked one, or holds it in memory):
        # read to its end, under max_bytes, also without a Content-Length.
        "wsgi.input_terminated": True,
    }
    try:
        _, form, files = _LargeReads(stream_factory=factory, max_content_length=max_bytes,
                                     silent=False).parse_from_environ(environ)
    except RequestEntityTooLarge as exc:
        _close_all(spools)
        raise PayloadTooLarge(limit_message, code="too_large_for_inline_upload") from exc
    except (ValueError, ClientDisconnected) as exc:
        _close_all(spools)
        raise BadRequest(f"the multipart body does not parse: {exc}", code="invalid_multipart") from exc
    if len(files.getlist("file")) > 1:
        _close_all(spools)
        raise BadRequest("send one file per upload: the body has several 'file' fields", code="multiple_files")
    part = files.get("file")
    if part is None or not part.filename:
        _close_all(spools)
        raise BadRequest("the multipart body has no file in a field named 'file'", code="missing_file")
    spool = part.stream
    assert isinstance(spool, HashingSpool)  # stream_factory made every file part's stream
    for other in spools:
        if other is not spool:
            other.close()
    spool.flush()
    return {k: form.get(k, "") for k in form}, UploadedFile(filename=part.filename, spool=spool)


def _boundary(content_type: str) -> bytes:
    try:
        return parse_options_header(content_type)[1].get("boundary", "").encode("ascii")
    except UnicodeEncodeError:
        return b""  # werkzeug's parser reports it


READ_SIZE = 1024 * 1024  # werkzeug reads 64 KiB at a time: 16x the calls per byte


class _LargeReads(FormDataParser):
    """werkzeug's form parser reading the body READ_SIZE bytes at a time (its multipart parser
    takes the size, parse_form_data does not pass it on)."""

    def _parse_multipart(self, stream: IO[bytes], mimetype: str, content_length: int | None,
                         options: dict[str, str]) -> Any:
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        parser = MultiPartParser(stream_factory=self.stream_factory, max_form_memory_size=self.max_form_memory_size,
                                 max_form_parts=self.max_form_parts, cls=self.cls, buffer_size=READ_SIZE)
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


def _close_all(spools: list[HashingSpool]) -> None:
    for spool in spools:
        spool.close()
