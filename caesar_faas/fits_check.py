"""Is this a FITS image? Decided from the name, the magic bytes and the primary header alone.

Used for inline uploads (a spooled local file) and for objects registered from storage events
(only the first blocks are fetched with a ranged GET), so the check never needs the whole file.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from astropy.io import fits

from .errors import Unprocessable, UnsupportedMediaType

BLOCK = 2880
HEADER_PROBE = BLOCK * 40  # enough for any sane primary header (1440 cards)
FITS_MAGIC = b"SIMPLE  ="
GZIP_MAGIC = b"\x1f\x8b"
_NAME_RE = re.compile(r"\.(fits|fit|fts)(\.gz)?$", re.IGNORECASE)


@dataclass(frozen=True)
class FitsInfo:
    format: str  # "fits" or "fits.gz"
    shape: list[int]  # numpy order: [..., NAXIS2, NAXIS1]
    bitpix: int
    data_bytes: int  # header + padded data size the header promises (uncompressed)


def check_name(filename: str) -> str:
    """The format the name claims ("fits" or "fits.gz"), or 415."""
    match = _NAME_RE.search(filename or "")
    if not match:
        raise UnsupportedMediaType(
            "only FITS images are accepted (.fits, .fit, .fts, optionally .gz)", code="unsupported_format")
    return "fits.gz" if match.group(2) else "fits"


def parse_header(head: bytes) -> tuple[fits.Header, int]:
    """Parse the primary header from the first bytes of an uncompressed FITS file.
    Returns the header and its length in bytes (whole blocks)."""
    if not head.startswith(FITS_MAGIC):
        raise UnsupportedMediaType("the content is not FITS (no SIMPLE card)", code="not_fits")
    end = None
    for offset in range(0, len(head) - 79, 80):
        if head[offset:offset + 8] == b"END     " or head[offset:offset + 80].rstrip() == b"END":
            end = offset + 80
            break
    if end is None:
        raise Unprocessable("the FITS header has no END card (truncated or corrupt)", code="invalid_fits")
    header_len = math.ceil(end / BLOCK) * BLOCK
    try:
        header = fits.Header.fromstring(head[:end].decode("ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable(f"the FITS header does not parse: {exc}", code="invalid_fits") from exc
    return header, header_len


def image_info(header: fits.Header, header_len: int, fmt: str) -> FitsInfo:
    """Check the header describes an image; return its shape and the size it promises."""
    if header.get("SIMPLE") is not True:
        raise Unprocessable("the FITS file does not conform (SIMPLE is not T)", code="invalid_fits")
    bitpix = header.get("BITPIX")
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise Unprocessable(f"invalid BITPIX {bitpix!r}", code="invalid_fits")
    naxis = header.get("NAXIS")
    if not isinstance(naxis, int) or naxis < 2:
        raise Unprocessable("the primary HDU holds no image (NAXIS < 2)", code="not_an_image")
    axes = [header.get(f"NAXIS{i}") for i in range(1, naxis + 1)]
    if not all(isinstance(n, int) and n > 0 for n in axes):
        raise Unprocessable("the primary HDU has an empty or invalid axis", code="not_an_image")
    if sum(1 for n in axes if n > 1) < 2:
        raise Unprocessable("the primary HDU holds no 2-D image (fewer than two axes longer than 1)",
                            code="not_an_image")
    data = abs(bitpix) // 8 * math.prod(axes)
    padded = math.ceil(data / BLOCK) * BLOCK
    return FitsInfo(format=fmt, shape=list(reversed(axes)), bitpix=bitpix, data_bytes=header_len + padded)


def _gunzip_head_and_size(chunks: Iterable[bytes], want_size: bool) -> tuple[bytes, int | None]:
    """First HEADER_PROBE uncompressed bytes; the full uncompressed size when want_size."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    head = bytearray()
    total = 0
    try:
        for chunk in chunks:
            out = inflater.decompress(chunk)
            total += len(out)
            if len(head) < HEADER_PROBE:
                head.extend(out[: HEADER_PROBE - len(head)])
            while inflater.unconsumed_tail:
                out = inflater.decompress(inflater.unconsumed_tail)
                total += len(out)
            if not want_size and len(head) >= HEADER_PROBE:
                return bytes(head), None
        total += len(inflater.flush())
    except zlib.error as exc:
        raise Unprocessable(f"the gzip stream is corrupt: {exc}", code="invalid_gzip") from exc
    if want_size and not inflater.eof:
        raise Unprocessable("the gzip stream is truncated", code="invalid_gzip")
    return bytes(head), total


def inspect_chunks(filename: str, chunks: Iterable[bytes], size: int | None, *,
                   whole: bool = True) -> FitsInfo:
    """Validate a FITS image from its bytes.

    whole=True: `chunks` is the whole file; a file shorter than its header promises is refused
    (truncated). whole=False: only the first blocks are given (a ranged GET); the size check uses
    `size` for plain FITS and is skipped for gzip (the uncompressed size is unknown)."""
    fmt = check_name(filename)
    iterator = iter(chunks)
    first = next(iterator, b"")
    if first.startswith(GZIP_MAGIC):
        fmt = "fits.gz"
        head, total = _gunzip_head_and_size(_chain(first, iterator), want_size=whole)
    elif fmt == "fits.gz":
        raise UnsupportedMediaType("the name ends in .gz but the content is not gzip", code="not_gzip")
    else:
        plain = bytearray(first)
        for chunk in iterator:
            if len(plain) >= HEADER_PROBE:
                break
            plain.extend(chunk)
        head, total = bytes(plain), size
    header, header_len = parse_header(head)
    info = image_info(header, header_len, fmt)
    if total is not None and total < info.data_bytes - BLOCK + 1:
        # Allow a missing last padding block (some writers omit it), nothing more.
        raise Unprocessable(
            f"the FITS file is truncated: {total} bytes, the header promises {info.data_bytes}",
            code="truncated_fits")
    return info


def _chain(first: bytes, rest: Iterable[bytes]) -> Iterable[bytes]:
    yield first
    yield from rest


def inspect_file(filename: str, path: str) -> FitsInfo:
    """Validate a local file (an inline upload spooled to disk)."""
    import os

    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        return inspect_chunks(filename, iter(lambda: fh.read(1024 * 1024), b""), size, whole=True)


__all__ = ["FitsInfo", "check_name", "inspect_chunks", "inspect_file"]
