"""file:// multipart uploads: each part written straight to its place in the object's file.

An upload's folder holds upload.json, `object` (the object being assembled: part n at offset
(n - 1) * part_size) and, per stored part, a marker part-NNNNN.json (its ETag and size) and a
lock file. Completing an upload is then a rename of `object`, not a copy of every part, and
the disk holds the bytes once (issue 11: the presigned file:// upload at half of `cp`).

A part is checked (its size, the CRC32 its URL was signed for) before it touches `object`:
straight from the server's body file when the server holds the whole body in one
(caesar_faas/bodyfile.py: a CRC32 pass, then a kernel-side copy), else after it was received
into a temp file. Under the part's lock, its marker is removed before its region is written and
written again after, so a marker never names bytes that are not in place: a failure or crash in
between leaves the part missing, and the client sends it again (the resume path). Writers share
a lock on upload.json that completion takes for itself, so no part is written while the object
is published (and completion creates no file in the folder, whatever it answers).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..bodyfile import copy_range
from .base import PartPlan, StoredParts

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
