"""file:// multipart uploads: each part written straight to its place in the object's file.

An upload's folder holds upload.json, `object` (the object being assembled: part n at offset
(n - 1) * part_size) and, per stored part, a marker part-NNNNN.json (its ETag and size) and a
lock file. Completing an upload is then a rename of `object`, not a copy of every part, and
the disk holds the bytes once (issue 11: the presigned file:// upload at half of `cp`).

A part not stored yet is received straight into its region of `object`, its CRC32 computed on
the way (receive_part: the gateway streams such bodies from the connection, see
caesar_faas/serving_stream.py); its marker is written only once size and CRC32 are right, so a
damaged body leaves the part missing. A part stored already is replaced only by a body checked
(its size, the signed CRC32) before it touches `object`: straight from the server's body file
when the server holds the whole body in one (caesar_faas/bodyfile.py: a CRC32 pass, then a
kernel-side copy), else after it was received into a temp file (write_part). Under the part's
lock, its marker is removed before its region is written and written again after, so a marker
never names bytes that are not in place: a failure or crash in between leaves the part missing,
and the client sends it again (the resume path). Writers share
a lock on upload.json that completion takes for itself, so no part is written while the object
is published (and completion creates no file in the folder, whatever it answers).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..bodyfile import copy_range, write_stream
from ..checksums import crc32_b64
from .base import BadDigest, PartPlan, StoredParts

OBJECT = "object"



def part_tag(crc32: str, size: int) -> str:
    """The ETag of a part: 32 hex digits from its CRC32 and size. From the bytes, so a retried
    PUT of the same part (even one racing the first) answers the same ETag, as S3's md5 does;
    every body that a part URL signed with a CRC32 accepts has that CRC32."""
    return hashlib.md5(f"part:{crc32}:{size}".encode(), usedforsecurity=False).hexdigest()


def _marker(folder: Path, number: int) -> Path:
    return folder / f"part-{number:05d}.json"


@contextlib.contextmanager
def _flock(path: Path, mode: str, kind: int) -> Iterator[None]:
    """flock(kind) on path (FileNotFoundError once the upload's folder was claimed or removed)."""
    with open(path, mode) as fh:
        fcntl.flock(fh, kind)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _part_lock(folder: Path, number: int) -> Iterator[None]:
    """A part's writer: shares the upload (upload.json) with the other parts' writers, which
    completion waits for, and holds the part's own lock file, which its retries wait for."""
    with _flock(folder / "upload.json", "rb", fcntl.LOCK_SH), \
            _flock(folder / f"part-{number:05d}.lock", "a", fcntl.LOCK_EX):
        yield


def write_part(folder: Path, number: int, offset: int, size: int, src: int, etag: str) -> str:
    """The first size bytes of the file src, already checked (LocalStorage.put_part), written at
    offset in the upload's object under the part's lock, then its marker; etag."""
    with _part_lock(folder, number):
        _marker(folder, number).unlink(missing_ok=True)
        out = os.open(folder / OBJECT, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            if copy_range(src, out, 0, size, dst_offset=offset) != size:
                raise OSError(f"part {number}: the body ended early")
        finally:
            os.close(out)
        _marker(folder, number).write_text(json.dumps({"etag": etag, "size": size}))
    return etag


def receive_part(folder: Path, number: int, offset: int, size: int, stream: IO[bytes], crc32: str | None) -> str | None:
    """Part number read from stream straight into its place in the upload's object, its CRC32
    computed on the way; its ETag. None, touching nothing, when the part is stored already: a
    stored part is replaced only by a body checked before it is written (write_part), so a
    damaged retry cannot destroy it. A body that is short, long or not of the signed CRC32
    (ValueError, BadDigest) leaves the part missing, as a crash mid-write would."""
    with _part_lock(folder, number):
        if _marker(folder, number).exists():
            return None
        out = os.open(folder / OBJECT, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            got = crc32_b64(write_stream(stream, out, offset=offset, size=size, crc=True, lock=_writing(folder))[1])
        finally:
            os.close(out)
        if crc32 is not None and got != crc32:
            raise BadDigest(f"the body's CRC32 is {got}, the URL was signed for {crc32}")
        etag = part_tag(got, size)
        _marker(folder, number).write_text(json.dumps({"etag": etag, "size": size}))
    return etag


# Writers of one file take turns in this process. The kernel serialises writes to a file anyway
# (the inode's lock), but its waiters spin on it: with four parts of one upload written at once,
# perf put 22% of the gateway's samples in rwsem_spin_on_owner. A Python lock's waiters sleep.
# A fixed set of locks, shared by hash: two uploads on one lock only take turns at their writes.
_WRITE_LOCKS = [threading.Lock() for _ in range(64)]


def _writing(key: object) -> threading.Lock:
    return _WRITE_LOCKS[hash(key) % len(_WRITE_LOCKS)]


def _read_marker(folder: Path, number: int) -> dict[str, Any] | None:
    try:
        doc = json.loads(_marker(folder, number).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # a torn marker (a crash while writing it): the part counts as missing
    return doc if isinstance(doc, dict) else None


def stored_parts(folder: Path, plan: PartPlan) -> StoredParts:
    """(number, ETag, size) of the parts in place."""
    found: StoredParts = []
    for number, _offset, length in plan:
        doc = _read_marker(folder, number)
        if doc is not None and doc.get("size") == length:
            found.append((number, str(doc["etag"]), length))
    return found


@contextlib.contextmanager
def assembled(folder: Path, plan: PartPlan, given: list[tuple[int, str]], size: int) -> Iterator[tuple[Path, list[str]]]:
    """(the object's file, the parts' ETags) once every planned part is in place with the
    ETag the client gives; no part is written until the block ends. ValueError otherwise."""
    with _flock(folder / "upload.json", "rb", fcntl.LOCK_EX):  # no part is being written now
        etags = []
        for (number, etag), (_, _, length) in zip(given, plan, strict=True):
            doc = _read_marker(folder, number)
            if doc is None:
                raise ValueError(f"part {number} was never uploaded")
            if doc.get("etag") != etag.strip('"') or doc.get("size") != length:
                raise ValueError(f"part {number}: ETag or size does not match the uploaded part")
            etags.append(str(doc["etag"]))
        target = folder / OBJECT
        if not target.exists() or target.stat().st_size != size:
            raise ValueError("the uploaded parts do not add up to the upload's size")
        yield target, etags
