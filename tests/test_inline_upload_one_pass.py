"""Inline uploads in one pass: the spool computes the sha256 while it is written (and no md5:
a file:// ETag names the version, storage/local.py); file:// storage takes the spool file by renaming it (same inode, nothing read back);
other storages read it once (put_file); a spool that was not handed over is removed."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from caesar_faas.multipart import HashingSpool, parse_upload
from caesar_faas.storage.base import Storage
from caesar_faas.storage.local import LocalStorage, version_tag


def _multipart(data: bytes, boundary: str = "xYzBoUnDaRy") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\nt1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.fits\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()


def test_the_spool_hashes_while_writing_and_file_storage_renames_it(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "objects")
    data = os.urandom(3 * 1024 * 1024 + 17)
    body = _multipart(data)
    fields, upload = parse_upload(io.BytesIO(body), "multipart/form-data; boundary=xYzBoUnDaRy", str(len(body)),
                                  max_bytes=10**8, limit_message="too big", spool_dir=str(storage.staging_dir))
    try:
        assert fields == {"tag": "t1"} and upload.size == len(data)
        assert upload.sha256 == hashlib.sha256(data).hexdigest()
        upload.spool.flush()
        inode = os.stat(upload.path).st_ino
        info = storage.put_file("files/u/x", upload.path, size=upload.size)
    finally:
        upload.spool.close()  # after the hand-over: nothing left to remove, no error
    assert os.stat(storage.path("files/u/x")).st_ino == inode  # moved, not copied
    assert info.etag == version_tag(os.stat(storage.path("files/u/x"))) == storage.stat("files/u/x").etag
    assert b"".join(storage.open("files/u/x")) == data
    assert not any(p.name.startswith(".upload-") for p in storage.staging_dir.iterdir())


def test_a_spool_not_handed_over_is_removed(tmp_path: Path) -> None:
    spool = HashingSpool(str(tmp_path))
    spool.write(b"abc")
    assert Path(spool.name).exists()
    spool.close()
    assert not Path(spool.name).exists()


def test_put_file_from_another_folder_and_of_the_wrong_size(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "objects")
    source = tmp_path / "elsewhere.bin"
    source.write_bytes(b"0123456789")
    info = storage.put_file("files/u/y", str(source), size=10)
    assert info.etag == storage.stat("files/u/y").etag and info.size == 10
    assert storage.read_bytes("files/u/y") == b"0123456789"
    other = tmp_path / "other.bin"
    other.write_bytes(b"short")
    with pytest.raises(ValueError):
        storage.put_file("files/u/z", str(other), size=10)
    assert not storage.exists("files/u/z")


def test_put_file_on_every_backend_reads_the_file_once(storage_backend: Storage, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    storage_backend.put_file("files/u/w", str(source), size=len(data), content_type="application/fits")
    assert b"".join(storage_backend.open("files/u/w")) == data
