"""multipart/form-data parsing for inline uploads.

The file part goes to a temporary file (the spool, which file:// storage then takes by renaming
it) while its sha256 and size are computed, in one pass and in chunks, so a 256 MiB upload never
sits in memory as a whole and is never read back to hash it. Three readers, one answer:
multipart_mapped (a body the server holds in a file), multipart_streamed (a stream of known
length) and werkzeug's parser for any other body and every refusal (parse_with_werkzeug).
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
from .multipart_streamed import parse_streamed


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
    file part, 413 over max_bytes (checked on Content-Length first, then while reading).

    A body of the usual shape is read in one pass: in place when the server holds it in a file
    (multipart_mapped), else from the stream straight into the spool when its length is known
    (multipart_streamed: the gateway's connection, or a body in memory). Anything else, and
    every refusal, is werkzeug's reading of the same bytes (parse_with_werkzeug)."""
    _check_form(content_type, content_length, max_bytes, limit_message)
    fd = body_file(stream, content_length)
    boundary = _boundary(content_type)
    if fd is not None:
        mapped = parse_mapped(fd, boundary, max_bytes=max_bytes, spool_dir=spool_dir)
        if mapped is not None:
            fields, filename, copied = mapped
            return fields, UploadedFile(filename=filename, spool=copied)
    elif content_length and content_length.isdigit() and boundary:
        try:
            streamed = parse_streamed(stream, boundary, max_bytes=max_bytes, spool_dir=spool_dir)
        except ClientDisconnected as exc:
            raise BadRequest(f"the multipart body does not parse: {exc}", code="invalid_multipart") from exc
        if isinstance(streamed, tuple):
            fields, filename, copied = streamed
            return fields, UploadedFile(filename=filename, spool=copied)
        return parse_with_werkzeug(streamed, content_type, content_length, max_bytes=max_bytes,
                                   limit_message=limit_message, spool_dir=spool_dir)  # the same bytes again
    return parse_with_werkzeug(stream, content_type, content_length, max_bytes=max_bytes,
                               limit_message=limit_message, spool_dir=spool_dir)


def _check_form(content_type: str, content_length: str | None, max_bytes: int, limit_message: str) -> None:
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the file as multipart/form-data with a field named 'file'",
                                   code="unsupported_media_type")
    if content_length and content_length.isdigit() and int(content_length) > max_bytes:
        raise PayloadTooLarge(limit_message, code="too_large_for_inline_upload")


def parse_with_werkzeug(stream: IO[bytes], content_type: str, content_length: str | None, *, max_bytes: int,
                        limit_message: str, spool_dir: str | None = None) -> tuple[dict[str, str], UploadedFile]:
    """parse_upload's answer through werkzeug's stream parser alone (the file part into a
    HashingSpool): any shape of body, and the reference the one-pass readers are tested against."""
    _check_form(content_type, content_length, max_bytes, limit_message)
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
