"""Small test utilities: free ports and polling with a deadline (never a bare sleep)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(probe: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.05,
             message: str = "condition") -> T:
    """Call probe until it returns a truthy value (returned) or raise after `timeout` seconds.
    Exceptions from probe count as 'not yet'. The deadline is only a ceiling (the call returns as
    soon as the probe holds), so it is generous: the machine is shared and a loaded one is slow."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}; last error: {last!r}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    from caesar_faas.backends.local import proc_info

    info = proc_info(pid)
    return info is not None and info.live


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> int:
    """proc's exit code; killed (and the TimeoutExpired raised) when it outlives timeout."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


async def stream_messages(js, subject: str, *, stream: str = "CAESAR", timeout: float = 60.0) -> list:
    """Every message on `subject` the JetStream stream holds now, read by a fresh pull consumer
    up to the subject's last message at the time of the call: the read ends when that one has
    arrived, never because one fetch was slow (a loaded machine), so counting duplicates in the
    result is exact."""
    import asyncio

    import nats.js.errors

    try:
        last = (await js.get_last_msg(stream, subject)).seq
    except nats.js.errors.NotFoundError:
        return []
    sub = await js.pull_subscribe(subject, stream=stream)
    msgs: list = []
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while not msgs or msgs[-1].metadata.sequence.stream < last:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"timed out after {timeout}s reading {subject} up to sequence {last}")
            try:
                msgs += await sub.fetch(batch=100, timeout=1)
            except TimeoutError:  # nats' own TimeoutError, or a bare one from one path of fetch()
                pass
    finally:
        await sub.unsubscribe()
    return msgs
