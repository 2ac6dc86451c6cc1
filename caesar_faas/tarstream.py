"""A tar.gz built on the fly from storage objects, yielded in chunks.

tarfile writes to a file object; a writer thread feeds a bounded queue that the response
generator drains, so memory stays at a few chunks whatever the size of the products."""

from __future__ import annotations

import queue
import tarfile
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

_DONE = object()


class _QueueWriter:
    def __init__(self, q: queue.Queue) -> None:
        self.q = q
        self.buf = bytearray()

    def write(self, data: bytes) -> int:
        self.buf.extend(data)
        if len(self.buf) >= 256 * 1024:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            self.q.put(bytes(self.buf))
            self.buf.clear()


class _ChunkReader:
    """A read()-able view of a chunk iterator (what tarfile.addfile wants)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.pending) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.pending += chunk
        if size < 0:
            out, self.pending = self.pending, b""
        else:
            out, self.pending = self.pending[:size], self.pending[size:]
        return out


def tar_gz(storage: Any, members: list[tuple[str, str]], root: str) -> Iterator[bytes]:
    """members: (storage key, name inside the archive under `root/`)."""
    q: queue.Queue = queue.Queue(maxsize=8)
    failure: list[BaseException] = []

    def produce() -> None:
        writer = _QueueWriter(q)
        try:
            with tarfile.open(fileobj=cast(Any, writer), mode="w|gz") as tar:  # stream mode only writes
                for key, name in members:
                    info = storage.stat(key)
                    entry = tarfile.TarInfo(f"{root}/{name}")
                    entry.size = info.size
                    entry.mtime = int(info.modified or time.time())
                    entry.mode = 0o644
                    tar.addfile(entry, _ChunkReader(iter(storage.open(key))))
            writer.flush()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            failure.append(exc)
        finally:
            q.put(_DONE)

    threading.Thread(target=produce, name="tar-gz", daemon=True).start()
    while True:
        item = q.get()
        if item is _DONE:
            break
        yield item
    if failure:
        raise failure[0]
