"""File checksums, read in chunks (never the whole file in memory).

CRC32 values use S3's encoding (base64 of the 4 big-endian bytes, as in x-amz-checksum-crc32), so
the same string is checked by S3/MinIO on a presigned part PUT and by the file:// signed endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import re
import threading
from typing import Any

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


class ParallelDigests:
    """Digests of one byte stream, each computed on its own thread: hashlib lets go of the GIL
    for large buffers, so sha256 and md5 of a chunk run beside each other and beside the caller
    writing it (2 cores: a 1 MiB chunk is hashed in about the time it takes to copy it).

    feed() hands each digest the same chunk (bytes are immutable, so it is not copied); at most
    `backlog` chunks wait per digest, so memory stays bounded when hashing falls behind.
    hexdigest() waits for its digest to finish. close() (or leaving the `with` block) stops
    the threads whatever happened."""

    def __init__(self, backlog: int = 8, **digests: Any) -> None:
        self._digests = digests
        self._queues: dict[str, queue.Queue[bytes | None]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._failed: dict[str, BaseException] = {}
        self._done = False
        for name, digest in digests.items():
            q: queue.Queue[bytes | None] = queue.Queue(maxsize=backlog)
            thread = threading.Thread(target=self._work, args=(name, digest, q), name=f"digest-{name}", daemon=True)
            self._queues[name], self._threads[name] = q, thread
            thread.start()

    def _work(self, name: str, digest: Any, q: queue.Queue[bytes | None]) -> None:
        while (chunk := q.get()) is not None:
            try:
                digest.update(chunk)
            except BaseException as exc:  # noqa: BLE001 - reported by hexdigest()
                self._failed[name] = exc
                while q.get() is not None:  # keep draining: feed() must never block for ever
                    pass
                return

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._digests)

    def feed(self, chunk: bytes) -> None:
        if chunk:
            for q in self._queues.values():
                q.put(chunk)

    def close(self) -> None:
        if not self._done:
            self._done = True
            for q in self._queues.values():
                q.put(None)
            for thread in self._threads.values():
                thread.join()

    def hexdigest(self, name: str) -> str:
        self.close()
        if name in self._failed:
            raise self._failed[name]
        return str(self._digests[name].hexdigest())

    def __enter__(self) -> ParallelDigests:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
