"""Small files for upload tests: a FITS image, its gzip, a truncated one, a PNG in disguise."""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from pathlib import Path

import numpy as np
from astropy.io import fits


def fits_bytes(shape: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    data = np.random.default_rng(seed).normal(size=shape).astype("float32")
    buf = io.BytesIO()
    fits.PrimaryHDU(data).writeto(buf)
    return buf.getvalue()


def write_fits(path: Path, shape: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    path.write_bytes(fits_bytes(shape, seed))
    return path


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


def truncated(data: bytes) -> bytes:
    """The header and half of the data: what an interrupted copy leaves."""
    return data[: 2880 + (len(data) - 2880) // 2]


def png_bytes() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (len(body).to_bytes(4, "big") + kind + body
                + zlib.crc32(kind + body).to_bytes(4, "big"))

    header = b"\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def table_fits_bytes() -> bytes:
    """A valid FITS file whose primary HDU holds no image (a table extension only)."""
    buf = io.BytesIO()
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.arange(3.0))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(buf)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gzip_bomb(image: bytes, expand_to: int, *, members: int = 1) -> bytes:
    """A gzip of `image` followed by `expand_to` zero bytes, split into `members` gzip members
    (what `cat a.gz b.gz` gives): the header promises a small image, the stream expands far past
    it. Built in 1 MiB steps; zeros compress about 1000:1."""
    out = bytearray()
    per_member = expand_to // members
    zeros = bytes(1024 * 1024)
    for index in range(members):
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        if index == 0:
            out += packer.compress(image)
        left = per_member
        while left > 0:
            out += packer.compress(zeros[:min(left, len(zeros))])
            left -= len(zeros)
        out += packer.flush()
    return bytes(out)
