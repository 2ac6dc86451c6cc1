"""Fetching the input: streamed from real file:// storage, gzip recognised by its bytes (not its
name) and decompressed on the fly, the stored object's sha256 kept for provenance."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from pathlib import Path

import pytest

from caesar_faas.gunzip import GzipError
from caesar_faas.runner.fetch import INPUT_NAME, copy_local_input, fetch_input, save_input
from caesar_faas.storage import open_storage
from caesar_faas.storage.base import CHUNK, ObjectNotFound
from tests.samples import fits_bytes


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    root = tmp_path / "objects"
    root.mkdir()
    return f"file://{root}"


def put(url: str, key: str, data: bytes) -> None:
    open_storage(url).put(key, io.BytesIO(data), size=len(data))


def test_plain_input_is_copied_as_input_fits(storage_url: str, tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK + 17)  # several chunks
    put(storage_url, "files/u/a", data)
    work = tmp_path / "work"
    work.mkdir()
    got = fetch_input(storage_url, "files/u/a", work)
    assert got.path == work / INPUT_NAME
    assert got.path.read_bytes() == data
    assert (got.stored_size, got.sha256, got.compressed) == (len(data), hashlib.sha256(data).hexdigest(), False)
    assert sorted(p.name for p in work.iterdir()) == [INPUT_NAME]  # no partial file left


def test_gzip_input_is_decompressed_streamed_even_multi_member(storage_url: str, tmp_path: Path) -> None:
    # A FITS image (the runner decompresses under the size its header promises) in two members.
    image = fits_bytes((1024, 600))
    first, second = image[:2 * CHUNK], image[2 * CHUNK:]
    stored = gzip.compress(first) + gzip.compress(second)  # what `cat a.gz b.gz` gives
    put(storage_url, "files/u/b", stored)
    got = fetch_input(storage_url, "files/u/b", tmp_path)
    assert got.compressed
    assert got.path.read_bytes() == first + second
    assert got.sha256 == hashlib.sha256(stored).hexdigest()  # of the stored object, as uploaded


def test_truncated_gzip_is_an_error(storage_url: str, tmp_path: Path) -> None:
    put(storage_url, "files/u/c", gzip.compress(fits_bytes((200, 200)))[:-20])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(GzipError):
        fetch_input(storage_url, "files/u/c", work)
    assert list(work.iterdir()) == []  # neither the image nor a partial file


def test_missing_object(storage_url: str, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        fetch_input(storage_url, "files/u/missing", tmp_path)


def test_plain_file_storage_input_is_copied_kernel_side_and_a_stream_the_same(storage_url: str,
                                                                               tmp_path: Path) -> None:
    """file:// (copy_local_input: copy_file_range while hashing the stored file) and a stream of
    chunks (save_input: other storages, presigned URLs) give the same input and sha256."""
    data = os.urandom(2 * CHUNK + 5)
    put(storage_url, "files/u/k", data)
    storage = open_storage(storage_url)
    copied_dir, streamed_dir = tmp_path / "copied", tmp_path / "streamed"
    copied_dir.mkdir()
    streamed_dir.mkdir()
    copied = copy_local_input(storage.path("files/u/k"), copied_dir)
    streamed = save_input(storage.open("files/u/k"), streamed_dir)
    assert copied is not None
    assert copied.path.read_bytes() == streamed.path.read_bytes() == data
    assert (copied.sha256, copied.stored_size) == (streamed.sha256, streamed.stored_size) == \
        (hashlib.sha256(data).hexdigest(), len(data))
    put(storage_url, "files/u/g", gzip.compress(data))
    assert copy_local_input(storage.path("files/u/g"), copied_dir) is None  # gzip: streamed, decompressed
    with pytest.raises(ObjectNotFound):
        copy_local_input(storage.path("files/u/none"), copied_dir)
