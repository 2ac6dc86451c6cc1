"""Is this a FITS image? Decided from the name, the magic bytes and the primary header alone.

Used for inline uploads (a spooled local file) and for objects registered from storage events
(only the first blocks are fetched with a ranged GET), so the check never needs the whole file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from astropy.io import fits
from astropy.io.fits.verify import VerifyError

from .errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType
from .gunzip import BoundedGunzip, GzipError, GzipTooLarge, expansion_cap

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


# Bidirectional overrides and isolates make a name display as something else (RLO "fits.exe").
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def clean_filename(filename: str) -> str:
    """The name to record: its last path segment (a name never becomes a path, and is shown
    without folders), at most 255 characters, no control or bidi-override characters; else 400."""
    from .errors import BadRequest

    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if (not name or len(name) > 255 or name in (".", "..")
            or any(ord(c) < 0x20 or ord(c) == 0x7F or c in _BIDI for c in name)):
        raise BadRequest("the file name must be 1-255 printable characters without control or "
                         "bidirectional-override characters", code="invalid_filename", field="filename")
    return name


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
    try:
        return _image_info(header, header_len, fmt)
    except VerifyError as exc:  # a card astropy cannot parse (e.g. BITPIX = -3x2)
        raise Unprocessable(f"the FITS header has an unparsable card: {exc}", code="invalid_fits") from None


def _image_info(header: fits.Header, header_len: int, fmt: str) -> FitsInfo:
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


def _inspect_gzip(fmt: str, chunks: Iterator[bytes], whole: bool) -> FitsInfo:
    """Decompress just enough for the header; with whole, then the rest of every member, counting
    (never keeping) the bytes, and refusing at once past what the header promises plus a margin."""
    gunzip = BoundedGunzip()
    head = bytearray()
    info: FitsInfo | None = None
    try:
        for chunk in chunks:
            for out in gunzip.feed(chunk):
                if info is None:
                    head.extend(out[: HEADER_PROBE - len(head)])
                    if len(head) >= HEADER_PROBE:
                        info = _image_of(bytes(head), fmt)
                        if not whole:
                            return info
                        gunzip.cap = expansion_cap(info.data_bytes)
        for out in gunzip.finish():
            if info is None:
                head.extend(out[: HEADER_PROBE - len(head)])
    except GzipTooLarge as exc:
        raise PayloadTooLarge(
            f"the gzip stream expands to more than {exc.cap} bytes, far more than its FITS header "
            f"promises ({info.data_bytes if info else 0} bytes)", code="gzip_too_large",
            limit="decompressed_bytes", max=exc.cap) from None
    except GzipError as exc:
        raise Unprocessable(str(exc), code="invalid_gzip") from None
    if info is None:  # a small file: all of it fitted in the probe
        info = _image_of(bytes(head), fmt)
        if gunzip.total > expansion_cap(info.data_bytes):
            raise PayloadTooLarge("the gzip stream expands to more than its FITS header promises",
                                  code="gzip_too_large", limit="decompressed_bytes",
                                  max=expansion_cap(info.data_bytes))
    if whole:
        _check_complete(info, gunzip.total)
    return info


def promised_size(head: bytes) -> int:
    """Bytes (header and padded data) that the primary header at the start of `head` promises;
    an ApiError (415/422) when it is no FITS image header."""
    return _image_of(head, "fits").data_bytes


def _image_of(head: bytes, fmt: str) -> FitsInfo:
    header, header_len = parse_header(head)
    return image_info(header, header_len, fmt)


def _check_complete(info: FitsInfo, total: int) -> None:
    if total < info.data_bytes - BLOCK + 1:
        # Allow a missing last padding block (some writers omit it), nothing more.
        raise Unprocessable(
            f"the FITS file is truncated: {total} bytes, the header promises {info.data_bytes}",
            code="truncated_fits")


def inspect_chunks(filename: str, chunks: Iterable[bytes], size: int | None, *,
                   whole: bool = True) -> FitsInfo:
    """Validate a FITS image from its bytes.

    whole=True: `chunks` is the whole file; a file shorter than its header promises is refused
    (truncated), and so is a gzip stream (all its members) expanding far past it (413, found
    after decompressing at most that much). whole=False: only the first blocks are given (a
    ranged GET); the size check uses `size` for plain FITS and is skipped for gzip."""
    fmt = check_name(filename)
    iterator = iter(chunks)
    first = next(iterator, b"")
    if first.startswith(GZIP_MAGIC):
        return _inspect_gzip("fits.gz", _chain(first, iterator), whole)
    if fmt == "fits.gz":
        raise UnsupportedMediaType("the name ends in .gz but the content is not gzip", code="not_gzip")
    plain = bytearray(first)
    for chunk in iterator:
        if len(plain) >= HEADER_PROBE:
            break
        plain.extend(chunk)
    info = _image_of(bytes(plain), fmt)
    if size is not None:
        _check_complete(info, size)
    return info


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def inspect_file(filename: str, path: str) -> FitsInfo:
    """Validate a local file (an inline upload spooled to disk)."""
    import os

    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        return inspect_chunks(filename, iter(lambda: fh.read(1024 * 1024), b""), size, whole=True)


__all__ = ["FitsInfo", "check_name", "inspect_chunks", "inspect_file", "promised_size"]
