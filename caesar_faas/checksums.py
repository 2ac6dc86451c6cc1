"""File checksums, read in chunks (never the whole file in memory).

CRC32 values use S3's encoding (base64 of the 4 big-endian bytes, as in x-amz-checksum-crc32), so
the same string is checked by S3/MinIO on a presigned part PUT and by the file:// signed endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

CHUNK = 1024 * 1024
CRC32_B64 = re.compile(r"^[A-Za-z0-9+/]{6}==$")


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def crc32_b64(value: int) -> str:
    """A running zlib.crc32 value in S3's encoding."""
    return base64.b64encode((value & 0xFFFFFFFF).to_bytes(4, "big")).decode("ascii")
