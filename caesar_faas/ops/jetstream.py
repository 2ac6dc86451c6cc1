"""What the metrics read from JetStream at scrape time: each durable consumer's lag (messages
not yet delivered plus delivered but not yet acknowledged) and the dead letters kept per subject.
Both are the server's own counters (consumer info, the stream's per-subject message counts):
nothing is scanned. A short connection per scrape, bounded by a timeout, so an unreachable NATS
costs the scrape two seconds at most and the store figures are still served."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import nats

from ..events.subjects import DEAD_PREFIX, STREAM

log = logging.getLogger(__name__)

TIMEOUT = 2.0


@dataclass
class StreamFigures:
    reachable: bool = False
    pending: dict[str, int] = field(default_factory=dict)  # durable consumer -> lag
    dead_letters: dict[str, int] = field(default_factory=dict)  # original subject -> letters kept


async def _read(url: str) -> StreamFigures:
    nc = await nats.connect(url, connect_timeout=TIMEOUT, max_reconnect_attempts=0, allow_reconnect=False)
    try:
        jsm = nc.jsm()
        figures = StreamFigures(reachable=True)
        # Every durable consumer of the stream, as the server lists them: the connector's
        # bindings (<function>--<subject>) without reading stack.yml, which images do not have.
        for info in await jsm.consumers_info(STREAM):
            if info.name:
                figures.pending[info.name] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        stream = await jsm.stream_info(STREAM, subjects_filter=DEAD_PREFIX + ">")
        for subject, count in (stream.state.subjects or {}).items():
            figures.dead_letters[subject.removeprefix(DEAD_PREFIX)] = int(count)
        return figures
    finally:
        await nc.close()


def read(url: str) -> StreamFigures:
    try:
        return asyncio.run(asyncio.wait_for(_read(url), TIMEOUT * 2))
    except Exception as exc:  # noqa: BLE001 - reported as caesar_nats_up 0, the rest is still served
        log.warning("metrics: JetStream figures unavailable (%s)", type(exc).__name__)
        return StreamFigures()
