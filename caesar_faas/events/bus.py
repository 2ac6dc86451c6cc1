"""Publishing to NATS JetStream from synchronous code (functions, the runner).

nats-py is asyncio-only, while handlers are plain functions called by a WSGI server; so one
background event-loop thread per process holds one connection and publishes on behalf of all
callers. Every publish waits for JetStream's ack: an event that returns without error is stored.

Recovery (issue 18): every call is bounded by `timeout`; no lock is held across I/O (callers
publish concurrently on the one connection); a publish or ping that times out drops the
connection, so the next call starts on a fresh one instead of waiting on a dead path (after a
stall nats-py's own connection could stay broken: a late PONG for a timed-out flush killed its
read loop). The health ping is a JetStream request, never a flush.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from typing import Any

import nats
from nats.js.api import StreamConfig

from .cloudevents import encode, make_event
from .subjects import STREAM, STREAM_SUBJECTS

log = logging.getLogger(__name__)

DUPLICATE_WINDOW = 120.0  # seconds: JetStream drops a second message with the same Nats-Msg-Id


async def ensure_stream(js: Any) -> None:
    """Create the CAESAR stream when missing (idempotent; also done by the connector)."""
    config = StreamConfig(name=STREAM, subjects=STREAM_SUBJECTS, duplicate_window=DUPLICATE_WINDOW,
                          max_age=7 * 24 * 3600.0)
    try:
        await js.stream_info(STREAM)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await js.stream_info(STREAM)  # created concurrently by another process


async def _close_quietly(nc: Any) -> None:
    try:
        await asyncio.wait_for(nc.close(), 2)
    except Exception:  # noqa: BLE001 - a dead connection may not close cleanly
        pass


async def _log_error(exc: Exception) -> None:
    # nats-py prints a traceback per failed reconnect by default; one line is enough.
    log.warning("NATS: %s", exc)


class EventBus:
    """A process-wide JetStream publisher. Use `get_bus(url)`."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-bus", daemon=True)
        self._thread.start()
        self._nc: Any = None
        self._js: Any = None
        self._connecting: asyncio.Lock | None = None  # made on the loop; held only while connecting

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout or 2 * self.timeout + 1)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("NATS did not answer in time") from None

    async def _connect(self) -> Any:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._nc is None or self._nc.is_closed:
                nc = await asyncio.wait_for(nats.connect(
                    self.url, connect_timeout=self.timeout, max_reconnect_attempts=-1, allow_reconnect=True,
                    reconnect_time_wait=0.5, error_cb=_log_error), self.timeout)
                js = nc.jetstream(timeout=self.timeout)
                try:
                    await ensure_stream(js)
                except BaseException:
                    self._loop.create_task(_close_quietly(nc))
                    raise
                self._nc, self._js = nc, js
            return self._js

    def _drop(self, js: Any) -> None:
        """Forget a connection that timed out (unless another call already replaced it)."""
        if js is self._js and self._nc is not None:
            nc, self._nc, self._js = self._nc, None, None
            self._loop.create_task(_close_quietly(nc))

    async def _bounded(self, call: Any) -> Any:
        js = await self._connect()
        try:
            return await asyncio.wait_for(call(js), self.timeout)
        except (TimeoutError, nats.errors.TimeoutError, nats.errors.ConnectionClosedError):
            self._drop(js)
            raise

    async def _publish(self, subject: str, payload: bytes, msg_id: str | None) -> Any:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        return await self._bounded(lambda js: js.publish(subject, payload, timeout=self.timeout, headers=headers))

    def publish_raw(self, subject: str, payload: bytes, msg_id: str | None = None) -> Any:
        """Publish bytes; returns the JetStream PubAck (ack.duplicate is True for a dropped copy)."""
        return self._run(self._publish(subject, payload, msg_id))

    def publish(self, subject: str, data: dict[str, Any], *, about: str, event_id: str | None = None) -> dict:
        """Publish a CloudEvent; returns the event."""
        event = make_event(subject, data, about=about, event_id=event_id)
        self.publish_raw(subject, encode(event), msg_id=event["id"])
        return event

    def ping(self) -> None:
        """Raise unless JetStream answers (a request with its own timeout, not a flush)."""
        self._run(self._bounded(lambda js: js.account_info()))

    def close(self) -> None:
        async def _close() -> None:
            if self._nc is not None and not self._nc.is_closed:
                await self._nc.drain()

        try:
            self._run(_close(), timeout=5)
        except Exception:  # noqa: BLE001 - closing at exit must not raise
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)


_buses: dict[str, EventBus] = {}
_buses_lock = threading.Lock()


def get_bus(url: str) -> EventBus:
    with _buses_lock:
        bus = _buses.get(url)
        if bus is None:
            bus = _buses[url] = EventBus(url)
        return bus


@atexit.register
def _close_all() -> None:
    for bus in list(_buses.values()):
        bus.close()
