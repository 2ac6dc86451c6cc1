"""Bounded, streaming gzip decompression (gzip-bomb safe), shared by upload validation and the runner.

Every member of a multi-member stream is decompressed (gzip allows members to be concatenated;
`gunzip` and astropy read them all), in steps of at most `STEP` output bytes, so a small input
that expands enormously never materialises. Once `cap` is set (the size the FITS header
promises, plus a margin), going past it raises GzipTooLarge at once: a bomb costs at most the
cap in decompression work, never its full expansion.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

STEP = 1024 * 1024  # most output bytes produced by one decompress call
_WBITS = 16 + zlib.MAX_WBITS  # gzip container


class GzipError(ValueError):
    """The stream is not valid gzip (corrupt, truncated, or trailing garbage)."""


class GzipTooLarge(GzipError):
    """The stream expands past the cap."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"the gzip stream expands to more than {cap} bytes")
        self.cap = cap


def expansion_cap(promised: int) -> int:
    """What a gzip FITS may expand to: the size its primary header promises plus a margin for
    writers that add a little (a missing or extra padding block, a small extension)."""
    return promised + max(64 * 2880, promised // 16)


class BoundedGunzip:
    def __init__(self, cap: int | None = None) -> None:
        self.cap = cap
        self.total = 0
        self._inflater = zlib.decompressobj(_WBITS)
        self._members = 0
        self._in_member = False

    def _count(self, out: bytes) -> bytes:
        self.total += len(out)
        if self.cap is not None and self.total > self.cap:
            raise GzipTooLarge(self.cap)
        return out

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """The decompressed bytes of `chunk`, in pieces of at most STEP bytes."""
        data = chunk
        try:
            while data:
                if self._inflater.eof:
                    # A next member, or trailing zeros (some tools pad); anything else is garbage.
                    if not data.strip(b"\0"):
                        return
                    if data[:2] != b"\x1f\x8b":
                        raise GzipError("trailing data after the gzip stream")
                    self._inflater = zlib.decompressobj(_WBITS)
                self._in_member = True
                out = self._inflater.decompress(data, STEP)
                if out:
                    yield self._count(out)
                if self._inflater.eof:
                    self._members += 1
                    self._in_member = False
                    data = self._inflater.unused_data
                else:
                    data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise GzipError(f"the gzip stream is corrupt: {exc}") from exc

    def finish(self) -> Iterator[bytes]:
        """What is left; GzipError when the stream stopped inside a member (truncated)."""
        try:
            out = self._inflater.flush()
        except zlib.error as exc:
            raise GzipError(f"the gzip stream is corrupt: {exc}") from exc
        if out:
            yield self._count(out)
        if self._in_member and not self._inflater.eof or self._members == 0:
            raise GzipError("the gzip stream is truncated")
