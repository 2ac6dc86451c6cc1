"""Request bodies the server already holds in a file, and kernel-side copies out of them.

waitress receives a large body (over its 512 KiB in-memory buffer) into a temporary file
before it calls the application, and hands that very file over as the input stream. Reading it
back through Python to write it elsewhere copies every byte twice more; copy_file_range copies
it inside the kernel instead (issue 11: uploads at half of `cp`'s speed or better).
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Callable, Iterator
from typing import Any

READ_STEP = 8 * 1024 * 1024  # one pread for a CRC32 (zlib lets go of the GIL on such buffers)
COPY_STEP = 64 * 1024 * 1024  # one copy_file_range call, between two looks at a stop flag


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
        view, written = memoryview(chunk), 0
        while written < len(chunk):
            written += os.pwrite(dst, view[written:], dst_offset + offset - start + written)
        offset += len(chunk)
    return offset - start


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
