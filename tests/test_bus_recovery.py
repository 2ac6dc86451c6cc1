"""Issue 18 item 7: the publisher recovers after a NATS stall. Before: a health ping during the
stall left the connection broken (a late PONG for the timed-out flush killed nats-py's read loop),
and every later publish timed out; publishes also queued behind one lock held across I/O."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from caesar_faas.events.bus import EventBus
from tests.fixtures.services import start_nats, stop
from tests.helpers import wait_for


def test_publishes_succeed_again_after_a_stall_with_pings(tmp_path: Path) -> None:
    proc, url = start_nats(tmp_path / "nats")
    bus = EventBus(url, timeout=2.0)
    try:
        assert bus.publish_raw("caesar.jobs.submitted", b"before").seq >= 1
        os.kill(proc.pid, signal.SIGSTOP)  # a stall: the TCP connection stays up, nobody answers
        try:
            with pytest.raises(Exception):  # noqa: B017 - a timeout of one kind or another
                bus.ping()
            failures: list[BaseException] = []

            def publish() -> None:
                try:
                    bus.publish_raw("caesar.jobs.submitted", b"during")
                except Exception as exc:  # noqa: BLE001 - expected while stalled
                    failures.append(exc)

            threads = [threading.Thread(target=publish) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert not any(t.is_alive() for t in threads)  # every call is bounded
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        wait_for(lambda: bus.publish_raw("caesar.jobs.submitted", b"after").seq, timeout=60,
                 message="a publish to succeed after the stall")
        # and they keep succeeding, pings too
        for _ in range(5):
            assert bus.publish_raw("caesar.jobs.submitted", b"again").seq >= 1
        bus.ping()
    finally:
        bus.close()
        stop(proc)
