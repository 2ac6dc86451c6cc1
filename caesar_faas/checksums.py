"""File checksums, read in chunks (never the whole file in memory)."""

from __future__ import annotations

import hashlib
import os

CHUNK = 1024 * 1024


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
