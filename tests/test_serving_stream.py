"""Bodies read from the connection by the request's thread (caesar_faas/serving_stream.py), through
a real waitress server and real sockets: the bytes arrive whole, the connection stays usable
after a body read whole, in part or not at all, a client that goes away or stalls is let go,
Expect: 100-continue and pipelining work, what the predicate does not pick stays buffered, and
so do the bodies past the number allowed to stream at once."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from caesar_faas.serving import make_server
from caesar_faas.serving_stream import StreamedBody

PICKED_FROM = 64 * 1024
errors: list[str] = []
started: list[str] = []  # the paths of the requests the app was handed, in order


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path, body = environ["PATH_INFO"], environ["wsgi.input"]
    started.append(path)
    answer: dict[str, Any] = {"streamed": isinstance(body, StreamedBody)}
    status = "200 OK"
    if path == "/s/echo":
        digest, size = hashlib.sha256(), 0
        while block := body.read(256 * 1024):
            digest.update(block)
            size += len(block)
        answer.update(sha256=digest.hexdigest(), size=size)
    elif path == "/s/half":
        body.read(int(environ["CONTENT_LENGTH"]) // 2)
    elif path == "/s/ignore":
        status = "403 Forbidden"
    elif path == "/s/record":
        try:
            while body.read(256 * 1024):
                pass
        except Exception as exc:  # noqa: BLE001 - what the app sees is the point
            errors.append(f"{type(exc).__name__}: {exc}")
            status = "400 Bad Request"
    out = json.dumps(answer).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


def picked(method: str, path: str, content_length: int) -> bool:
    return method == "PUT" and path.startswith("/s/") and content_length > PICKED_FROM


@pytest.fixture
def server_at() -> Iterator[Callable[..., int]]:
    """Starts a streaming server (adjustments as keywords); its port."""
    running: list[tuple[Any, threading.Thread]] = []

    def start(**adjustments: Any) -> int:
        server = make_server(app, streamed=picked, host="127.0.0.1", port=0, threads=4, **adjustments)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        return int(server.effective_port)

    errors.clear()
    started.clear()
    yield start
    for server, thread in running:
        server.close()
        thread.join(timeout=10)


@pytest.fixture
def port(server_at: Callable[..., int]) -> int:
    return server_at()


def put(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[http.client.HTTPResponse, dict[str, Any]]:
    conn.request("PUT", path, body=body, headers={"Content-Length": str(len(body))})
    answer = conn.getresponse()
    return answer, json.loads(answer.read() or b"{}")


def poll(probe: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


def test_a_picked_body_reaches_the_app_from_the_socket_and_the_connection_goes_on(port: int) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    answer, doc = put(conn, "/s/echo", data)
    sock = conn.sock
    assert answer.status == 200 and doc == {"streamed": True, "sha256": hashlib.sha256(data).hexdigest(),
                                            "size": len(data)}
    small = os.urandom(1000)  # under the predicate's size: waitress's buffer as before
    answer, doc = put(conn, "/s/echo", small)
    assert doc == {"streamed": False, "sha256": hashlib.sha256(small).hexdigest(), "size": len(small)}
    assert conn.sock is sock  # the same connection served both
    conn.close()


@pytest.mark.parametrize("path", ["/s/ignore", "/s/half"])
def test_the_rest_of_a_body_the_app_left_is_dropped_and_the_connection_stays_usable(port: int, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    answer, doc = put(conn, path, os.urandom(2 * 1024 * 1024))
    sock = conn.sock
    assert answer.status in (200, 403) and doc["streamed"] is True
    assert (answer.getheader("Connection") or "").lower() != "close"
    data = os.urandom(200 * 1024)
    answer, doc = put(conn, "/s/echo", data)
    assert doc["sha256"] == hashlib.sha256(data).hexdigest() and conn.sock is sock
    conn.close()


def raw_request(port: int, head: str, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode("latin-1") + body)
    return sock


def read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """count HTTP answers (each with Content-Length) read off sock: their bodies."""
    buffered, bodies = b"", []
    while len(bodies) < count:
        while b"\r\n\r\n" not in buffered:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buffered += chunk
        head, buffered = buffered.split(b"\r\n\r\n", 1)
        if head.startswith(b"HTTP/1.1 100"):
            continue
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(buffered) < length:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buffered += chunk
        bodies.append(buffered[:length])
        buffered = buffered[length:]
    return bodies


def test_a_request_pipelined_behind_a_streamed_body_is_answered(port: int) -> None:
    data = os.urandom(1024 * 1024 + 5)
    head = f"PUT /s/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n"
    after = b"PUT /s/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    with raw_request(port, head, data + after) as sock:
        first, second = (json.loads(body) for body in read_answers(sock, 2))
    assert first["streamed"] is True and first["sha256"] == hashlib.sha256(data).hexdigest()
    assert second == {"streamed": False, "sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3}


def test_expect_100_continue(port: int) -> None:
    data = os.urandom(512 * 1024)
    head = f"PUT /s/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\nExpect: 100-continue\r\n\r\n"
    with raw_request(port, head) as sock:
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(data)
        (body,) = read_answers(sock, 1)
    assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_client_that_goes_away_mid_body_is_let_go(port: int) -> None:
    head = f"PUT /s/record HTTP/1.1\r\nHost: x\r\nContent-Length: {4 * 1024 * 1024}\r\n\r\n"
    sock = raw_request(port, head, os.urandom(100 * 1024))
    sock.close()
    poll(lambda: errors, "the app to see the disconnection")
    assert errors[0].startswith("ClientDisconnected")
    assert requests.put(f"http://127.0.0.1:{port}/s/echo", data=b"x", timeout=30).json()["size"] == 1


def test_a_stalled_client_is_let_go_after_the_channel_timeout(server_at: Callable[..., int]) -> None:
    port = server_at(channel_timeout=1)
    head = f"PUT /s/record HTTP/1.1\r\nHost: x\r\nContent-Length: {4 * 1024 * 1024}\r\n\r\n"
    with raw_request(port, head, os.urandom(100 * 1024)) as sock:
        poll(lambda: errors, "the app to give up on the stalled body")
        assert "no byte of the body arrived in 1 s" in errors[0]
        sock.settimeout(15)
        answer = b""
        while chunk := sock.recv(65536):  # the answer, then the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")


def test_chunked_bodies_stay_with_waitress(port: int) -> None:
    pieces = [os.urandom(300 * 1024) for _ in range(4)]
    doc = requests.put(f"http://127.0.0.1:{port}/s/echo", data=iter(pieces), timeout=30).json()
    assert doc == {"streamed": False, "sha256": hashlib.sha256(b"".join(pieces)).hexdigest(),
                   "size": sum(map(len, pieces))}


def test_past_max_streamed_bodies_are_buffered_and_a_slot_comes_back(server_at: Callable[..., int]) -> None:
    port = server_at(max_streamed=1)
    data = os.urandom(300 * 1024)
    head = f"PUT /s/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n"
    # A slow client holds the one slot (and a worker) while it sends...
    slow = raw_request(port, head, data[:1000])
    with slow:
        poll(lambda: started, "the slow body to be handed over")
        # ...so another body is buffered by waitress and answered meanwhile, by another worker.
        other = requests.put(f"http://127.0.0.1:{port}/s/echo", data=data, timeout=30).json()
        assert other == {"streamed": False, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        slow.sendall(data[1000:])
        (body,) = read_answers(slow, 1)
        assert json.loads(body) == {"streamed": True, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    # The slot came back with the answer; and again after a client that left mid-body.
    assert requests.put(f"http://127.0.0.1:{port}/s/echo", data=data, timeout=30).json()["streamed"] is True
    gone = raw_request(port, f"PUT /s/record HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n",
                       data[:1000])
    gone.close()
    poll(lambda: errors, "the app to see the disconnection")
    assert requests.put(f"http://127.0.0.1:{port}/s/echo", data=data, timeout=30).json()["streamed"] is True


def test_streamed_bodies_need_the_io_thread_to_stay_off_the_connection() -> None:
    with pytest.raises(ValueError, match="channel_request_lookahead 0"):
        make_server(app, streamed=picked, host="127.0.0.1", port=0, channel_request_lookahead=1)
