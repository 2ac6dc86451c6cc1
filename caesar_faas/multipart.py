"""Streaming multipart/form-data parsing for inline uploads.

The file part is written to a temporary file while its sha256, size and (when the storage
will take the spool file as it is) the storage's md5 etag are computed, in one pass and in
chunks, so a 256 MiB upload never sits in memory as a whole and is never read back to hash it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import parse_form_data

from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


class HashingSpool:
    """A temp file that hashes what is written to it. close() removes the file unless it was
    handed over (moved into storage, see files.store_upload)."""

    def __init__(self, directory: str | None, *, md5: bool = False) -> None:
        fd, self.name = tempfile.mkstemp(dir=directory, prefix=".upload-")
        self.file: IO[bytes] = os.fdopen(fd, "w+b")
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        if self.md5 is not None:
            self.md5.update(data)
        self.size += len(data)
        return self.file.write(data)

    def close(self) -> None:
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
    spool: HashingSpool

    @property
    def path(self) -> str:
        return self.spool.name

    @property
    def md5(self) -> str | None:
        """The storage etag of a file:// object, when the spool computed it."""
        return self.spool.md5.hexdigest() if self.spool.md5 is not None else None

    @property
    def sha256(self) -> str:
        return self.spool.sha256.hexdigest()

    @property
    def size(self) -> int:
        return self.spool.size


def parse_upload(stream: BinaryIO, content_type: str, content_length: str | None, *, max_bytes: int,
                 limit_message: str, spool_dir: str | None = None,
                 md5: bool = False) -> tuple[dict[str, str], UploadedFile]:
    """Fields and the `file` part of a multipart body. 415 when not multipart, 400 without a
    file part, 413 over max_bytes (checked on Content-Length first, then while reading)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the file as multipart/form-data with a field named 'file'",
                                   code="unsupported_media_type")
    if content_length and content_length.isdigit() and int(content_length) > max_bytes:
        raise PayloadTooLarge(limit_message, code="too_large_for_inline_upload")
    spools: list[HashingSpool] = []

    def factory(total_content_length: Any, content_type: Any, filename: Any, content_length: Any = None) -> Any:
        spool = HashingSpool(spool_dir, md5=md5)
        spools.append(spool)
        return spool

    environ = {
        "wsgi.input": stream,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": content_length or "",
        "REQUEST_METHOD": "POST",
    }
    try:
        _, form, files = parse_form_data(environ, stream_factory=factory, max_content_length=max_bytes,
                                         silent=False)
    except RequestEntityTooLarge as exc:
        _close_all(spools)
        raise PayloadTooLarge(limit_message, code="too_large_for_inline_upload") from exc
    except ValueError as exc:
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


def _close_all(spools: list[HashingSpool]) -> None:
    for spool in spools:
        spool.close()
