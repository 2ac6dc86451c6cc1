"""Fetch the job's input image into the work folder, streamed: from storage (CAESAR_STORAGE_URL)
or through the presigned GET URL of CAESAR_JOB's "transfer" (then the runner has no storage access).

From file:// storage a plain image is copied kernel-side while it is hashed (copy_local_input).
A gzip-compressed upload (recognised by its magic bytes, not by its name: user-supplied names
never decide anything) is decompressed on the fly, so neither form is ever held in memory. The
local file is always `input.fits`: the uploaded name never becomes a path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..bodyfile import copy_range, read_blocks
from ..checksums import ParallelDigests
from ..errors import ApiError
from ..fits_check import HEADER_PROBE, promised_size
from ..gunzip import BoundedGunzip, GzipError, GzipTooLarge, expansion_cap
from ..storage import ObjectNotFound, open_storage
from ..storage.local import LocalStorage
from .background import in_thread

GZIP_MAGIC = b"\x1f\x8b"
INPUT_NAME = "input.fits"


@dataclass(frozen=True)
class FetchedInput:
    path: Path
    stored_size: int  # bytes of the stored object
    sha256: str  # of the stored object, as the file record has it
    compressed: bool


class _GunzipWriter:
    """Writes decompressed bytes of a (possibly multi-member) gzip stream to fh, under the cap
    that upload validation applied: what the primary header promises plus a margin. A stream
    that expands past it (a gzip bomb) raises GzipTooLarge with at most the cap written."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.gunzip = BoundedGunzip()
        self.head = bytearray()

    def _out(self, pieces: Iterable[bytes]) -> None:
        for piece in pieces:
            if self.gunzip.cap is None:
                self.head.extend(piece[: HEADER_PROBE - len(self.head)])
                if len(self.head) >= HEADER_PROBE:
                    self._set_cap()
            self.fh.write(piece)

    def _set_cap(self) -> None:
        try:
            self.gunzip.cap = expansion_cap(promised_size(bytes(self.head)))
        except ApiError as exc:
            raise GzipError(f"the decompressed input is not a FITS image: {exc.message}") from None

    def write(self, chunk: bytes) -> None:
        self._out(self.gunzip.feed(chunk))

    def close(self) -> None:
        self._out(self.gunzip.finish())
        if self.gunzip.cap is None:
            self._set_cap()
            if self.gunzip.total > (self.gunzip.cap or 0):
                raise GzipTooLarge(self.gunzip.cap or 0)


def fetch_input(storage_url: str, key: str, workdir: Path) -> FetchedInput:
    """Download `key` to workdir/input.fits. Raises storage.base.ObjectNotFound, gunzip.GzipError."""
    storage = open_storage(storage_url)
    if isinstance(storage, LocalStorage):
        copied = copy_local_input(storage.path(key), workdir)
        if copied is not None:
            return copied
    return save_input(storage.open(key), workdir)


def copy_local_input(source: Path, workdir: Path) -> FetchedInput | None:
    """A plain (not gzip) file:// object copied kernel-side (copy_file_range, on a thread) while
    its sha256 is computed from the stored file: both at once, and no byte through Python twice.
    None for a gzip object (save_input decompresses it, hashing the stored bytes)."""
    target = workdir / INPUT_NAME
    partial = target.with_name(target.name + ".part")
    try:
        src = os.open(source, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        raise ObjectNotFound(str(source)) from None
    try:
        if os.pread(src, 2, 0) == GZIP_MAGIC:
            return None
        size = os.fstat(src).st_size
        out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            copied = in_thread(copy_range, src, out, 0, size)
            digest = hashlib.sha256()
            for block in read_blocks(src, 0, size):
                digest.update(block)
            sha256 = digest.hexdigest()
            if copied.result() != size:
                raise OSError(f"{source} changed while it was copied")
        finally:
            os.close(out)
    except BaseException:
        partial.unlink(missing_ok=True)  # a half-written input must never be mistaken for the image
        raise
    finally:
        os.close(src)
    partial.replace(target)
    return FetchedInput(path=target, stored_size=size, sha256=sha256, compressed=False)


def fetch_input_url(url: str, workdir: Path) -> FetchedInput:
    """Download a presigned GET URL to workdir/input.fits, starting again after a transient
    failure. Raises storage.base.ObjectNotFound (404), gunzip.GzipError, presigned.TransferError."""
    from .presigned import get_chunks, with_retries  # requests: only runners without storage access

    return with_retries(lambda: save_input(get_chunks(url, "the input"), workdir), "fetching the input")


def save_input(chunks: Iterable[bytes], workdir: Path) -> FetchedInput:
    """Write the stored object's chunks to workdir/input.fits, decompressing a gzip stream;
    nothing is left at that path unless the whole object arrived."""
    target = workdir / INPUT_NAME
    partial = target.with_name(target.name + ".part")
    size = 0
    compressed = False
    # The sha256 on its own thread, beside the writes (half the time of a 64 MB input).
    digests = ParallelDigests(sha256=hashlib.sha256())
    try:
        with digests, open(partial, "wb") as fh:
            writer = None
            for chunk in chunks:
                if not chunk:
                    continue
                if writer is None:
                    compressed = chunk[:2] == GZIP_MAGIC
                    writer = _GunzipWriter(fh) if compressed else fh
                digests.feed(chunk)
                size += len(chunk)
                writer.write(chunk)
            if isinstance(writer, _GunzipWriter):
                writer.close()
            sha256 = digests.hexdigest("sha256")
    except BaseException:
        partial.unlink(missing_ok=True)  # a half-written input must never be mistaken for the image
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # release the connection or file at once, also when we stopped early
    partial.replace(target)
    return FetchedInput(path=target, stored_size=size, sha256=sha256, compressed=compressed)
