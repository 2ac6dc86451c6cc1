"""An inline upload's multipart body parsed as it is read, in one pass into the spool.

For a stream of known length, the gateway's connection (serving_stream.py hands a large
inline upload over before its body has arrived) or a body held in memory: the body is read into
a few reused buffers, each searched for the file part's closing boundary, the bytes before it
written to the spool (the file files.store_upload then renames into storage) and hashed (sha256)
on a trailing thread. Each byte is received once, written once and hashed once; no copy of the
whole body is made first (issue 11: waitress's body file was a second copy, and on a machine
slow to hand out fresh pages a second 200 MiB of them).

Only the usual shape of a form is read this way, the shape multipart_mapped.py reads in place
(CRLF line breaks, no preamble, form-data parts with a name, one file part named `file`), and no
more than max_bytes of it. For anything else werkzeug's parser gets the very same bytes:
parse_streamed then answers a stream that replays what was read (the spooled file bytes
included) before the rest of the body, so every refusal keeps werkzeug's reading of it.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

from .bodyfile import read_into
from .multipart_headers import closes_form, part_disposition
from .multipart_mapped import HEADERS_MAX, PARTS_MAX, CopiedSpool

READ = 1024 * 1024  # one buffer: filled from the socket, searched, written, hashed
BUFFERS = 4  # in flight between the reader and the trailing hash
FIELDS_MAX = 1024 * 1024  # the form's other fields together; more and werkzeug decides


class StreamedSpool(CopiedSpool):
    """The spool of a streamed upload: CopiedSpool's interface (its own class says which reader
    took the body)."""


Parsed = tuple[dict[str, str], str, StreamedSpool]


def parse_streamed(stream: IO[bytes], boundary: bytes, *, max_bytes: int, spool_dir: str | None,
                   read_size: int = READ) -> Parsed | IO[bytes]:
    """(fields, filename, spool) of the multipart body read from stream, or, when the body is not
    of the usual shape or goes on past max_bytes, a stream of the same bytes for werkzeug's
    parser. read_size: the bytes read at a time (tests make it small to put the boundary across
    every buffer edge)."""
    reader = _Reader(stream, b"--" + boundary, spool_dir, read_size, max_bytes)
    try:
        found = reader.read()
    except BaseException:
        reader.discard()
        raise
    return found if found is not None else reader.replay()


def _read_full(stream: IO[bytes], view: memoryview) -> int:
    """Fill view from stream (fewer bytes only at its end); how many bytes were read."""
    done = 0
    while done < len(view) and (got := read_into(stream, view[done:])):
        done += got
    return done


class _Reader:
    """One pass over a streamed body; what it read is kept for a replay until it decides."""

    def __init__(self, stream: IO[bytes], delimiter: bytes, spool_dir: str | None, read_size: int,
                 max_bytes: int) -> None:
        self.stream, self.delimiter, self.spool_dir, self.read_size = stream, delimiter, spool_dir, read_size
        self.left = max_bytes + 1  # reading one byte past the limit shows the body is over it
        self.separator = b"\r\n" + delimiter
        self.pending = bytearray()  # read, not yet parsed (the head, or what follows the file)
        self.head = b""  # the body up to the file part's bytes, once they start
        self.spool: _Spool | None = None
        self.ended = False
        self.field_bytes = 0

    # -- the parts around the file: small, parsed from self.pending --

    def _more(self) -> bool:
        if self.ended:
            return False
        chunk = self.stream.read(min(self.read_size, self.left))
        self.left -= len(chunk)
        if not chunk or not self.left:
            self.ended = True  # the end of the body, or over max_bytes: werkzeug decides
        self.pending += chunk
        return bool(chunk) and bool(self.left)

    def _find(self, needle: bytes, start: int, limit: int) -> int:
        """Where needle is in pending at or after start, reading on while it may come within
        limit bytes of start; -1 when it does not."""
        while True:
            found = self.pending.find(needle, start, start + limit + len(needle))
            if found >= 0 or len(self.pending) >= start + limit + len(needle) or not self._more():
                return found

    def _have(self, end: int) -> bool:
        while len(self.pending) < end:
            if not self._more():
                return False
        return True

    def read(self) -> Parsed | None:
        delimiter = self.delimiter
        if not self._have(len(delimiter) + 2) or self.pending[:len(delimiter) + 2] != delimiter + b"\r\n":
            return None
        fields: dict[str, str] = {}
        filename: str | None = None
        pos = len(delimiter) + 2
        for _ in range(PARTS_MAX):
            headers_end = self._find(b"\r\n\r\n", pos, HEADERS_MAX)
            if headers_end < 0:
                return None
            named = part_disposition(bytes(self.pending[pos:headers_end]))
            if named is None:
                return None
            start = headers_end + 4
            if named[1] is None:
                end = self._find(self.separator, start, FIELDS_MAX - self.field_bytes)
                if end < 0:
                    return None
                self.field_bytes += end - start
                # the first of repeated fields, as werkzeug's form.get
                fields.setdefault(named[0], self.pending[start:end].decode("utf-8", "replace"))
            else:
                if filename is not None or named[0] != "file" or not named[1]:
                    return None  # several files, or not the `file` field: werkzeug's answer applies
                filename = named[1]
                if not self._spool_file(start):
                    return None
                end = 0  # _spool_file left pending starting with the separator
            after = end + len(self.separator)
            if not self._have(after + 2):
                return None
            closes = closes_form(bytes(self.pending[after:after + 2]))
            if closes is None:
                return None
            if closes:
                break
            pos = after + 2
        else:
            return None
        if filename is None or self.spool is None:
            return None
        spool, self.spool = self.spool, None
        return fields, filename, spool.finish()

    # -- the file part: large, read into reused buffers --

    def _spool_file(self, start: int) -> bool:
        """Write the file part's bytes (from pending[start:], then the stream) to a new spool until
        the separator, which then starts pending; False when the body ends before it."""
        self.head = bytes(self.pending[:start])
        first = bytes(self.pending[start:])
        self.pending = bytearray()
        keep = len(self.separator) - 1  # the most of a separator a buffer can end with
        # A buffer holds more than the bytes kept back from it (tests read a few bytes at a time).
        spool = self.spool = _Spool(self.spool_dir, max(self.read_size, 2 * len(self.separator)))
        end = first.find(self.separator)
        if end >= 0:
            spool.write_bytes(first[:end])
            self.pending += first[end:]
            return True
        tail = first
        for buffer in spool.buffers():
            view = memoryview(buffer)
            got = _read_full(self.stream, view[:min(len(buffer), self.left)])
            self.left -= got
            if got < len(buffer) or not self.left:  # the body's last bytes: searched with the tail
                rest = tail + bytes(view[:got])
                view.release()
                spool.give_back(buffer)
                end = rest.find(self.separator) if self.left else -1
                if end < 0:  # the body ends, or goes past max_bytes, before the file does
                    self.ended = True
                    self.pending += rest  # for a replay
                    return False
                spool.write_bytes(rest[:end])
                self.pending += rest[end:]
                return True
            joined = tail + bytes(view[:keep])  # a separator across the two
            end = joined.find(self.separator)
            if 0 <= end < len(tail):
                spool.write_bytes(tail[:end])
                self.pending += joined[end:] + bytes(view[keep:])
                view.release()
                spool.give_back(buffer)
                return True
            spool.write_bytes(tail)
            end = buffer.find(self.separator)
            if end >= 0:
                spool.write_buffer(buffer, end)
                self.pending += view[end:]
                view.release()
                return True
            spool.write_buffer(buffer, len(buffer) - keep)
            tail = bytes(view[len(buffer) - keep:])
            view.release()
        raise AssertionError("unreachable: buffers() does not end")

    # -- the way out --

    def replay(self) -> IO[bytes]:
        """A stream of the whole body as read so far, then the rest of the stream."""
        pieces: list[IO[bytes]] = []
        if self.spool is not None:
            spooled = self.spool.reopen()
            self.spool.discard()
            self.spool = None
            pieces += [io.BytesIO(self.head), spooled]
        pieces += [io.BytesIO(bytes(self.pending)), self.stream]
        return _Chain(pieces)  # type: ignore[return-value]

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.discard()
            self.spool = None


class _Spool:
    """The file part's bytes in a new temp file, their sha256 on a trailing thread that hands
    each buffer back once it has hashed it."""

    def __init__(self, spool_dir: str | None, buffer_size: int) -> None:
        self.fd, self.name = tempfile.mkstemp(dir=spool_dir, prefix=".upload-")
        self.size = 0
        self.digest = hashlib.sha256()
        self.free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(BUFFERS):
            self.free.put(bytearray(buffer_size))
        self.todo: queue.Queue[tuple[bytes | bytearray, int] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._hash, name="upload-sha256", daemon=True)
        self.thread.start()

    def _hash(self) -> None:
        while (item := self.todo.get()) is not None:
            data, length = item
            with memoryview(data) as view:
                self.digest.update(view[:length])
            if isinstance(data, bytearray):
                self.free.put(data)

    def buffers(self) -> Iterator[bytearray]:
        while True:
            yield self.free.get()  # waits while the hash is BUFFERS behind

    def give_back(self, buffer: bytearray) -> None:
        self.free.put(buffer)

    def _write(self, view: memoryview) -> None:
        written = 0
        while written < len(view):
            written += os.write(self.fd, view[written:])
        self.size += len(view)

    def write_bytes(self, data: bytes) -> None:
        if data:
            self._write(memoryview(data))
            self.todo.put((data, len(data)))

    def write_buffer(self, buffer: bytearray, length: int) -> None:
        """buffer[:length] written and queued for the hash, which then gives the buffer back."""
        with memoryview(buffer) as view:
            self._write(view[:length])
        self.todo.put((buffer, length))

    def _stop(self) -> None:
        self.todo.put(None)
        self.thread.join()

    def finish(self) -> StreamedSpool:
        self._stop()
        os.close(self.fd)
        return StreamedSpool(self.name, self.size, self.digest.hexdigest())

    def reopen(self) -> IO[bytes]:
        return open(self.name, "rb")  # noqa: SIM115 - read by the replay, closed with it

    def discard(self) -> None:
        self._stop()
        os.close(self.fd)
        try:
            os.unlink(self.name)
        except FileNotFoundError:
            pass


class _Chain(io.RawIOBase):
    """Several streams read one after the other."""

    def __init__(self, pieces: list[IO[bytes]]) -> None:
        super().__init__()
        self._pieces = pieces

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pieces:
            got = read_into(self._pieces[0], memoryview(buffer).cast("B"))
            if got:
                return got
            finished = self._pieces.pop(0)
            if isinstance(finished, io.BufferedReader):
                finished.close()  # the spool's copy (the stream itself stays the server's)
        return 0
