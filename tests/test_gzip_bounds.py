"""Gzip bombs (issue 18 item 2): validation and the runner decompress every member, streamed, and
stop as soon as the output passes what the FITS header promises plus a margin."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from caesar_faas.errors import PayloadTooLarge, Unprocessable
from caesar_faas.fits_check import inspect_chunks
from caesar_faas.gunzip import STEP, BoundedGunzip, GzipError, GzipTooLarge, expansion_cap
from caesar_faas.runner.fetch import INPUT_NAME, fetch_input
from caesar_faas.storage import open_storage
from tests.samples import fits_bytes, gzip_bomb

MIB = 1024 * 1024
IMAGE = fits_bytes((64, 48))


class Counting:
    """Chunks of `data`, counting how many bytes were pulled."""

    def __init__(self, data: bytes, size: int = 64 * 1024) -> None:
        self.data, self.size, self.pulled = data, size, 0

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.size):
            self.pulled += min(self.size, len(self.data) - start)
            yield self.data[start:start + self.size]


def test_a_valid_gzip_fits_passes_whole_and_multi_member() -> None:
    assert inspect_chunks("a.fits.gz", [gzip.compress(IMAGE)], None).shape == [64, 48]
    half = len(IMAGE) // 2
    two = gzip.compress(IMAGE[:half]) + gzip.compress(IMAGE[half:])
    assert inspect_chunks("a.fits.gz", Counting(two), None).shape == [64, 48]


@pytest.mark.parametrize("members", [1, 2, 8])
def test_a_bomb_is_refused_after_decompressing_at_most_the_cap(members: int) -> None:
    bomb = gzip_bomb(IMAGE, 512 * MIB, members=members)
    chunks = Counting(bomb)
    with pytest.raises(PayloadTooLarge) as info:
        inspect_chunks("bomb.fits.gz", chunks, len(bomb))
    assert info.value.code == "gzip_too_large"
    assert info.value.extra["max"] == expansion_cap(len(IMAGE))
    assert chunks.pulled < len(bomb)  # stopped early: the rest was never even read


def test_second_member_bomb_is_seen() -> None:
    """Before: only the first member was checked, in 0.05 s, and the upload accepted."""
    bomb = gzip.compress(IMAGE) + gzip_bomb(b"", 64 * MIB)
    with pytest.raises(PayloadTooLarge):
        inspect_chunks("bomb.fits.gz", [bomb], len(bomb))


def test_trailing_garbage_and_truncation_are_invalid() -> None:
    with pytest.raises(Unprocessable):
        inspect_chunks("a.fits.gz", [gzip.compress(IMAGE) + b"garbage"], None)
    with pytest.raises(Unprocessable):
        inspect_chunks("a.fits.gz", [gzip.compress(IMAGE)[:-10]], None)
    assert inspect_chunks("a.fits.gz", [gzip.compress(IMAGE) + bytes(512)], None)  # zero padding is fine


def test_bounded_gunzip_never_yields_more_than_a_step() -> None:
    gunzip = BoundedGunzip(cap=8 * MIB)
    pieces = []
    with pytest.raises(GzipTooLarge):
        for piece in gunzip.feed(gzip_bomb(b"", 64 * MIB)):
            pieces.append(len(piece))
    assert max(pieces) <= STEP and gunzip.total <= 8 * MIB + STEP


def test_runner_decompresses_under_the_same_cap(tmp_path: Path) -> None:
    """Before: the runner wrote the whole expansion (4 GiB for a 4 MB upload) to input.fits."""
    root = tmp_path / "objects"
    root.mkdir()
    url = f"file://{root}"
    bomb = gzip_bomb(IMAGE, 256 * MIB, members=3)
    open_storage(url).put("files/u/bomb", io.BytesIO(bomb), size=len(bomb))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(GzipTooLarge):
        fetch_input(url, "files/u/bomb", work)
    assert list(work.iterdir()) == []  # the partial input is gone
    good = gzip.compress(IMAGE[:5000]) + gzip.compress(IMAGE[5000:])
    open_storage(url).put("files/u/good", io.BytesIO(good), size=len(good))
    assert (fetch_input(url, "files/u/good", work).path).read_bytes() == IMAGE
    assert (work / INPUT_NAME).exists()


def test_runner_refuses_gzip_that_is_not_fits(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    root.mkdir()
    url = f"file://{root}"
    data = gzip.compress(b"not a fits file" * 20000)
    open_storage(url).put("files/u/x", io.BytesIO(data), size=len(data))
    with pytest.raises(GzipError):
        fetch_input(url, "files/u/x", tmp_path)
