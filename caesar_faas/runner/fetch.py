"""Fetch the job's input image into the work folder, streamed: from storage (CAESAR_STORAGE_URL)
or through the presigned GET URL of CAESAR_JOB's "transfer" (then the runner has no storage access).

A gzip-compressed upload (recognised by its magic bytes, not by its name: user-supplied names
never decide anything) is decompressed on the fly, so neither form is ever held in memory. The
local file is always `input.fits`: the uploaded name never becomes a path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import ApiError
from ..fits_check import HEADER_PROBE, promised_size
from ..gunzip import BoundedGunzip, GzipError, GzipTooLarge, expansion_cap
from ..storage import open_storage

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
    return save_input(open_storage(storage_url).open(key), workdir)


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
    digest = hashlib.sha256()
    size = 0
    compressed = False
    try:
        with open(partial, "wb") as fh:
            writer = None
            for chunk in chunks:
                if not chunk:
                    continue
                if writer is None:
                    compressed = chunk[:2] == GZIP_MAGIC
                    writer = _GunzipWriter(fh) if compressed else fh
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
            if isinstance(writer, _GunzipWriter):
                writer.close()
    except BaseException:
        partial.unlink(missing_ok=True)  # a half-written input must never be mistaken for the image
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # release the connection or file at once, also when we stopped early
    partial.replace(target)
    return FetchedInput(path=target, stored_size=size, sha256=digest.hexdigest(), compressed=compressed)
