"""Request bodies read from the connection by the request's own thread, not spooled first.

waitress receives every body in its one I/O thread, into memory or (over 512 KiB) a temporary
file, and calls the application only once the body is complete. For a part of a presigned
upload that means each byte is received, written to the temporary file, read back for its
CRC32 and copied again into the object, all of the receiving done by one thread for every
connection at once (issue 11: the presigned file:// upload at a fifth of `cp`).

For the requests a predicate picks (method, path, Content-Length), the parser here stops at the
end of the headers and hands the request to a worker thread at once, with a wsgi.input that
reads the socket itself (recv_into the reader's buffer): the body is received by the thread
that stores it, once. The I/O thread leaves the connection alone meanwhile: waitress reads a
channel only while it has no request queued (channel_request_lookahead 0, which serve()
requires). An application that does not read the whole body gets the rest discarded after its
answer, so the connection stays usable and the client sees the answer, as with waitress's own
buffering; a client that stops sending gets its connection closed after channel_timeout.
Bodies sent with Transfer-Encoding: chunked are left to waitress.

A streamed body holds its worker thread for as long as its client takes to send it, so only so
many are streamed at once (StreamSlots, half the threads by default): past that, waitress
buffers the body as before (its I/O thread receives any number at once), and slow uploads
cannot take every worker from the other requests.
"""

from __future__ import annotations

import functools
import io
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.task import WSGITask
from werkzeug.exceptions import ClientDisconnected

# Which requests are streamed: (method, path, content_length) -> bool.
StreamedWhen = Callable[[str, str, int], bool]
DRAIN_STEP = 1024 * 1024


class StreamSlots:
    """How many bodies may be streamed at once; a request that finds none free is buffered."""

    def __init__(self, limit: int) -> None:
        self._free = threading.BoundedSemaphore(max(1, limit))

    def take(self) -> bool:
        return self._free.acquire(blocking=False)

    def give(self) -> None:
        self._free.release()


class StreamedBody(io.RawIOBase):
    """The rest of one request's body: what the I/O thread had read past the headers, then the
    socket. Reads end at Content-Length; a connection that ends or stalls before that raises
    werkzeug's ClientDisconnected (a 400 where the application lets it through)."""

    def __init__(self, channel: HTTPChannel, prefix: bytes, left: int, timeout: float) -> None:
        super().__init__()
        self._channel = channel
        self._prefix = memoryview(prefix)
        self._left = len(prefix) + left
        self._timeout = timeout
        self._poller: Any = None

    def readable(self) -> bool:
        return True

    @property
    def drained(self) -> bool:
        return self._left == 0

    def readinto(self, buffer: Any) -> int:
        if self._left == 0:
            return 0
        view = memoryview(buffer).cast("B")[:self._left]
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
        else:
            n = self._recv_into(view)
        self._left -= n
        return n

    def _recv_into(self, view: memoryview) -> int:
        sock = self._channel.socket
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                n = sock.recv_into(view)
            except BlockingIOError:  # the socket is non-blocking (waitress's event loop owns it)
                self._wait(sock, deadline)
                continue
            except OSError as exc:
                raise ClientDisconnected(f"the connection failed while the body was read: {exc}") from None
            if n == 0:
                raise ClientDisconnected(f"the client closed the connection {self._left} bytes before the body's end")
            self._channel.last_activity = time.time()
            return n

    def _wait(self, sock: Any, deadline: float) -> None:
        left = deadline - time.monotonic()
        if self._poller is None:  # one per body: a fast sender makes many short waits
            self._poller = select.poll()
            self._poller.register(sock, select.POLLIN)
        if left <= 0 or not self._poller.poll(left * 1000):
            raise ClientDisconnected(f"no byte of the body arrived in {self._timeout:g} s")

    def drain(self) -> None:
        """Read and drop what is left of the body."""
        scrap = bytearray(min(DRAIN_STEP, self._left))
        while self._left:
            self.readinto(scrap)


class StreamingParser(HTTPRequestParser):
    """waitress's parser, which for a picked request counts as complete at the end of its
    headers, its body then read from the socket (StreamedBody)."""

    completed: bool  # waitress's, declared for the type checker

    def __init__(self, adj: Any, *, channel: HTTPChannel | None = None, when: StreamedWhen | None = None,
                 slots: StreamSlots | None = None) -> None:
        super().__init__(adj)
        self._channel = channel
        self._when = when
        self._slots = slots
        self._holds_slot = False
        self.streamed_body: StreamedBody | None = None

    def received(self, data: bytes) -> int:
        in_headers = self.body_rcv is None and not self.completed
        n = super().received(data)
        if not (in_headers and self.headers_finished and not self.completed) or self._channel is None:
            return n
        ahead = len(data) - n  # bytes of the body in this read (a pipelined request could follow them)
        if self.chunked or self.error is not None or ahead >= self.content_length or self._when is None \
                or not self._when(self.command, self.path, self.content_length):
            return n
        if self.expect_continue and self._channel.requests:
            return n  # an answer before it is pending: waitress sends the 100 when it may
        if self._slots is not None:
            if not self._slots.take():
                return n  # as many streamed as allowed: this one is buffered
            self._holds_slot = True
        if self.expect_continue:
            self._channel.send_continue()  # now: the body is not read until the request is served
        self.streamed_body = StreamedBody(self._channel, bytes(data[n:]), self.content_length - ahead,
                                          float(self.adj.channel_timeout))
        self.completed = True  # after send_continue, which sets it back to False
        return len(data)

    def get_body_stream(self) -> Any:
        return self.streamed_body if self.streamed_body is not None else super().get_body_stream()

    def close(self) -> None:
        """waitress closes every request once it is served or its connection is given up."""
        super().close()
        if self._holds_slot and self._slots is not None:
            self._holds_slot = False
            self._slots.give()


class StreamingTask(WSGITask):
    """waitress's task, which then drops what the application left of a streamed body."""

    close_on_finish: bool  # waitress's, declared for the type checker

    def service(self) -> None:
        super().service()
        body = getattr(self.request, "streamed_body", None)
        if body is not None and not body.drained and not self.close_on_finish:
            try:
                body.drain()  # the next request on this connection starts after it
            except ClientDisconnected:
                self.close_on_finish = True


def streaming_channel(base: type[HTTPChannel], when: StreamedWhen,
                      slots: StreamSlots | None = None) -> type[HTTPChannel]:
    """A channel class like base whose requests `when` picks have their bodies streamed, as many
    at once as slots allows (all of them without slots)."""

    class StreamingChannel(base):  # type: ignore[valid-type,misc]
        task_class = StreamingTask

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.parser_class = functools.partial(StreamingParser, channel=self, when=when, slots=slots)

    return StreamingChannel
