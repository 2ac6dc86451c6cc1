"""An inline upload's multipart body read in place, when the server already holds it in a file.

waitress receives a large body into a temporary file before it calls the application (its
overflow buffer) and hands that file over as the input stream. Parsing it as a stream copies
every byte several times (read, the parser's buffer, slices, the spool's write). Here the body
is mapped instead: the file part is copied kernel-side into the spool (copy_file_range, on a
thread) while one pass over the mapping looks for its closing boundary and hashes what it has
passed (sha256), so each byte is copied once and read once (issue 11: the inline upload at 0.5x
of `cp`). Pages are let go of as soon as they are passed: the mapping does not grow the
process's resident memory by the size of the body.

Only the usual shape of a form is taken this way (CRLF line breaks, no preamble, form-data
parts with a name, one file part, named `file`); anything else returns None and the caller
parses the stream with werkzeug as before, so every refusal keeps werkzeug's reading of it.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import queue
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from .bodyfile import copy_range
from .multipart_headers import closes_form, part_disposition

HEADERS_MAX = 16 * 1024  # the headers of one part; more and werkzeug decides
PARTS_MAX = 1000  # werkzeug's max_form_parts
WINDOW = 8 * 1024 * 1024  # scanned, hashed (hashlib lets go of the GIL), then let go of


@dataclass
class _Part:
    name: str
    filename: str | None
    start: int
    end: int


class CopiedSpool:
    """The spool of a mapped upload: the file part's bytes in a temp file, their sha256 known.
    The same interface as multipart.HashingSpool (name, size, sha256_hex, flush, close)."""

    def __init__(self, name: str, size: int, sha256: str) -> None:
        self.name, self.size, self._sha256 = name, size, sha256

    def sha256_hex(self) -> str:
        return self._sha256

    def flush(self) -> None:
        """The bytes went to the file through the kernel: nothing is buffered here."""

    def close(self) -> None:
        try:
            os.unlink(self.name)
        except FileNotFoundError:
            pass  # handed over to the storage (renamed), or closed twice


def parse_mapped(fd: int, boundary: bytes, *, max_bytes: int,
                 spool_dir: str | None) -> tuple[dict[str, str], str, CopiedSpool] | None:
    """(fields, filename, spool) of the body in fd, or None when the body is not of the usual
    shape (see the module doc) or is over max_bytes."""
    size = os.fstat(fd).st_size
    if not boundary or size > max_bytes:
        return None
    with mmap.mmap(fd, size, prot=mmap.PROT_READ) as body:
        reader = _Reader(fd, body, b"--" + boundary, spool_dir)
        try:
            found = reader.read()
        except BaseException:
            reader.discard()
            raise
        if found is None:
            reader.discard()
            return None
    return found


class _Reader:
    """One pass over a mapped body: its parts, and the file part spooled on the way."""

    def __init__(self, fd: int, body: mmap.mmap, delimiter: bytes, spool_dir: str | None) -> None:
        self.fd, self.body, self.delimiter, self.spool_dir = fd, body, delimiter, spool_dir
        self.separator = b"\r\n" + delimiter
        self.copier: _Copier | None = None

    def read(self) -> tuple[dict[str, str], str, CopiedSpool] | None:
        body, delimiter = self.body, self.delimiter
        if body[:len(delimiter) + 2] != delimiter + b"\r\n":
            return None
        fields: dict[str, str] = {}
        upload: _Part | None = None
        digest = hashlib.sha256()
        pos, parts = len(delimiter) + 2, 0
        while parts < PARTS_MAX:
            parts += 1
            headers_end = body.find(b"\r\n\r\n", pos, pos + HEADERS_MAX)
            if headers_end < 0:
                return None
            named = part_disposition(body[pos:headers_end])
            if named is None:
                return None
            start = headers_end + 4
            if named[1] is None:
                end = body.find(self.separator, start)
                if end < 0:
                    return None
                # the first of repeated fields, as werkzeug's form.get
                fields.setdefault(named[0], body[start:end].decode("utf-8", "replace"))
            else:
                if upload is not None or named[0] != "file" or not named[1]:
                    return None  # several files, or not the `file` field: werkzeug's answer applies
                self.copier = _Copier(self.fd, start, len(body), self.spool_dir)
                end = self._scan_hashing(start, digest)
                if end < 0:
                    return None
                upload = _Part(named[0], named[1], start, end)
            after = end + len(self.separator)
            closes = closes_form(bytes(body[after:after + 2]))
            if closes is None:
                return None
            if closes:
                break
            pos = after + 2
        else:
            return None
        if upload is None or self.copier is None:
            return None
        assert upload.filename is not None
        name = self.copier.finish(upload.end - upload.start)
        self.copier = None
        return fields, upload.filename, CopiedSpool(name, upload.end - upload.start, digest.hexdigest())

    def _scan_hashing(self, start: int, digest: Any) -> int:
        """Where the separator after start is (-1: nowhere), hashing the bytes before it. The
        hashing trails the search on its own thread (the search holds the GIL, hashlib does not)."""
        body, separator = self.body, self.separator
        hasher = _Hasher(body, digest)
        try:
            pos = start
            while pos < len(body):
                stop = min(len(body), pos + WINDOW)
                end = body.find(separator, pos, min(len(body), stop + len(separator) - 1))
                hasher.add(pos, stop if end < 0 else end)
                if end >= 0:
                    return end
                pos = stop
            return -1
        finally:
            hasher.finish()

    def discard(self) -> None:
        if self.copier is not None:
            self.copier.cancel()
            self.copier = None


class _Hasher:
    """digest.update() of ranges of a mapping on a thread, in order; each range let go after."""

    def __init__(self, body: mmap.mmap, digest: Any) -> None:
        self.body, self.digest = body, digest
        # Bounded: the search (faster) waits, so few windows are mapped at any time.
        self.ranges: queue.Queue[tuple[int, int] | None] = queue.Queue(maxsize=2)
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="upload-sha256", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        view = memoryview(self.body)
        try:
            while (span := self.ranges.get()) is not None:
                if self.failed is None:
                    try:
                        self.digest.update(view[span[0]:span[1]])
                    except BaseException as exc:  # noqa: BLE001 - raised by finish()
                        self.failed = exc
                _let_go(self.body, *span)
        finally:
            view.release()  # before the mapping is closed

    def add(self, start: int, end: int) -> None:
        self.ranges.put((start, end))

    def finish(self) -> None:
        self.ranges.put(None)
        self.thread.join()
        if self.failed is not None:
            raise self.failed


def _let_go(body: mmap.mmap, start: int, end: int) -> None:
    """Drop the pages of [start, end) from this process (they stay in the page cache)."""
    first = start - start % mmap.PAGESIZE
    try:
        body.madvise(mmap.MADV_DONTNEED, first, end - first)
    except (AttributeError, OSError, ValueError):
        pass  # no madvise here: the pages stay mapped until the body is unmapped


class _Copier:
    """Copies src[start:size] into a new temp file on a thread, kernel-side (copy_file_range),
    until finish() (which cuts it to the file part's length) or cancel()."""

    def __init__(self, src: int, start: int, size: int, spool_dir: str | None) -> None:
        self.out, self.name = tempfile.mkstemp(dir=spool_dir, prefix=".upload-")
        self.src, self.start, self.size = src, start, size
        self.stopped = False
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="upload-copy", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            copy_range(self.src, self.out, self.start, self.size, stopped=lambda: self.stopped)
        except BaseException as exc:  # noqa: BLE001 - raised by finish(), on the caller's thread
            self.failed = exc

    def finish(self, length: int) -> str:
        """The spool file, cut to length; raises what the copy raised."""
        self.thread.join()
        try:
            if self.failed is not None:
                raise self.failed
            if os.fstat(self.out).st_size < length:
                raise OSError("the upload's spool file is shorter than the file part")
            os.ftruncate(self.out, length)
        except BaseException:
            self.cancel()
            raise
        os.close(self.out)
        return self.name

    def cancel(self) -> None:
        self.stopped = True
        self.thread.join()
        os.close(self.out)
        try:
            os.unlink(self.name)
        except FileNotFoundError:
            pass
