"""Request bodies the server already holds in a file, and kernel-side copies out of them.

waitress receives a large body (over its 512 KiB in-memory buffer) into a temporary file
before it calls the application, and hands that very file over as the input stream. Reading it
back through Python to write it elsewhere copies every byte twice more; copy_file_range copies
it inside the kernel instead (issue 11: uploads at half of `cp`'s speed or better).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from typing import Any

READ_STEP = 8 * 1024 * 1024  # one pread for a CRC32 (zlib lets go of the GIL on such buffers)
COPY_STEP = 64 * 1024 * 1024  # one copy_file_range call, between two looks at a stop flag
STREAM_STEP = 1024 * 1024  # one read of a stream (a socket's recv_into: no copy in between)


def body_file(stream: Any, content_length: str | int | None = None) -> int | None:
    """The descriptor of stream when it is a regular file holding exactly the body (of
    content_length bytes when that is known), not read from yet; else None."""
    try:
        fd = stream.fileno()
        st = os.fstat(fd)
        position = stream.tell()
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or position != 0 or st.st_size == 0:
        return None
    if content_length is not None and str(content_length) != str(st.st_size):
        return None
    return int(fd)


def copy_range(src: int, dst: int, start: int, end: int, *, dst_offset: int = 0,
               stopped: Callable[[], bool] = lambda: False) -> int:
    """src[start:end] to dst at dst_offset, kernel-side; in user space where the kernel cannot
    copy between the two files (another filesystem on an old kernel, for instance). The number
    of bytes copied (fewer when src ends early or stopped() turns true)."""
    offset = start
    try:
        while offset < end and not stopped():
            copied = os.copy_file_range(src, dst, min(COPY_STEP, end - offset), offset, dst_offset + offset - start)
            if copied == 0:
                return offset - start
            offset += copied
        return offset - start
    except OSError:
        if offset != start:
            raise
    while offset < end and not stopped():
        chunk = os.pread(src, min(READ_STEP, end - offset), offset)
        if not chunk:
            break
        pwrite_all(dst, chunk, dst_offset + offset - start)
        offset += len(chunk)
    return offset - start


def pwrite_all(fd: int, data: Any, offset: int) -> None:
    """All of data written to fd at offset (pwrite may write less than asked)."""
    view, written = memoryview(data), 0
    while written < len(view):
        written += os.pwrite(fd, view[written:], offset + written)


def write_stream(stream: Any, fd: int, *, offset: int = 0, size: int | None = None, limit: int | None = None,
                 crc: bool = False, lock: Any = None) -> tuple[int, int]:
    """stream read to its end into fd from offset, in STREAM_STEP pieces through one reused
    buffer: (bytes, their CRC32, 0 unless crc). With size exactly size bytes, else with limit at
    most limit bytes (ValueError otherwise). lock, when given, is held around each write."""
    bound = size if size is not None else limit
    buffer = bytearray(STREAM_STEP)
    view = memoryview(buffer)
    value, total = 0, 0
    try:
        while True:
            # With a bound ask for one byte past it, so a longer stream is detected.
            want = STREAM_STEP if bound is None else min(STREAM_STEP, bound - total + 1)
            got = read_into(stream, view[:want])
            if not got:
                break
            if bound is not None and total + got > bound:
                what = "declared" if size is not None else "allowed"
                raise ValueError(f"stream longer than the {what} {bound} bytes")
            if crc:
                value = zlib.crc32(view[:got], value)
            with lock if lock is not None else contextlib.nullcontext():
                pwrite_all(fd, view[:got], offset + total)
            total += got
    finally:
        view.release()
    if size is not None and total != size:
        raise ValueError(f"stream ended after {total} of the declared {size} bytes")
    return total, value


def read_into(stream: Any, view: memoryview) -> int:
    """Some bytes of stream into view (readinto, or read() for a stream without it); how many."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        try:
            return int(readinto(view) or 0)
        except (NotImplementedError, io.UnsupportedOperation):  # a raw stream that only has read()
            pass
    chunk = stream.read(len(view))
    view[:len(chunk)] = chunk
    return len(chunk)


def read_blocks(fd: int, start: int, end: int) -> Iterator[memoryview]:
    """fd[start:end] in READ_STEP pieces, each read (pread) into the same buffer: a piece is
    valid until the next one is asked for. OSError when the file ends before end."""
    buffer = bytearray(min(READ_STEP, max(0, end - start)) or 1)
    view = memoryview(buffer)
    offset = start
    try:
        while offset < end:
            got = os.preadv(fd, [view[:min(len(buffer), end - offset)]], offset)
            if got <= 0:
                raise OSError("the file ended early")
            yield view[:got]
            offset += got
    finally:
        view.release()


def crc32_range(fd: int, start: int, end: int) -> int:
    """zlib.crc32 of fd[start:end]."""
    crc = 0
    for block in read_blocks(fd, start, end):
        crc = zlib.crc32(block, crc)
    return crc
