"""Status events on caesar.jobs.status, published from a background thread.

A job must not wait on NATS: when the server is unreachable every publish blocks for the bus
timeout, so events go through a queue to one publisher thread (which keeps their order). During
an outage, progress events superseded by a newer queued event are dropped; the result file and
the monitor cover what never arrives. Event ids are "<job id>-<seq>", so a re-sent event is
dropped by JetStream's duplicate window and consumers can order events by seq.

The NATS client is imported by the publisher thread on its first event, so its import overlaps
the job's start instead of delaying it (and see main.skip_websocket_support).
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from typing import Any

from ..events.subjects import JOBS_STATUS
from ..jobs.status_auth import sign

log = logging.getLogger("caesar_faas.runner.status")
# The bus logs each failed reconnect (twice a second while NATS is away); in a job log one line
# per outage, written below, says the same.
logging.getLogger("caesar_faas.events.bus").setLevel(logging.ERROR)


def _connect(nats_url: str) -> Any:
    from ..events.bus import get_bus

    return get_bus(nats_url)

_STOP = object()


class StatusReporter:
    def __init__(self, job_id: str, owner: str, nats_url: str, key: str | None = None) -> None:
        self.job_id = job_id
        self._key = key
        self.owner = owner
        self.nats_url = nats_url
        self._seq = 0
        self._progress = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._failing = False
        self.published: list[int] = []  # seqs that JetStream acknowledged
        # In the caller's context: the events carry its request id (logs.bind), lines its job id.
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._work,),
                                        name="status-events", daemon=True)
        self._thread.start()

    # -- what the runner calls -------------------------------------------------------------
    def started(self, message: str) -> None:
        self._emit("started", 0, message)

    def progress(self, percent: int, message: str) -> None:
        """Progress only moves forward: a lower value than already reported is raised to it."""
        self._progress = max(self._progress, min(int(percent), 99))
        self._emit("progress", self._progress, message)

    def finished(self, data: dict[str, Any]) -> None:
        self._progress = 100
        extra = {k: v for k, v in data.items() if k != "message"}
        self._emit("finished", 100, data.get("message", ""), **extra)

    def close(self, timeout: float) -> bool:
        """Wait up to timeout seconds for queued events to be published; True when all were."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- internals ---------------------------------------------------------------------------
    def _emit(self, phase: str, percent: int, message: str, **extra: Any) -> None:
        self._seq += 1
        data = {"job_id": self.job_id, "owner": self.owner, "seq": self._seq, "phase": phase,
                "progress": percent, "message": message}
        data.update(extra)
        if self._key:
            data = sign(self._key, data)  # the dispatcher applies only events signed by this job
        log.info("status %s %d%%: %s", phase, percent, message)
        self._queue.put(data)

    def _work(self) -> None:
        bus = None
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._failing and item["phase"] == "progress" and not self._queue.empty():
                continue  # superseded by a newer event while NATS is away
            try:
                bus = bus or _connect(self.nats_url)
                bus.publish(JOBS_STATUS, item, about=self.job_id, event_id=f"{self.job_id}-{item['seq']}")
                self.published.append(item["seq"])
                if self._failing:
                    log.info("NATS reachable again; status events resume")
                    self._failing = False
            except Exception as exc:  # noqa: BLE001 - the job goes on without events
                if not self._failing:
                    # (not the URL: it may hold credentials)
                    log.warning("cannot publish status events to NATS (%s: %s); the job goes on and "
                                "result.json will hold the outcome", type(exc).__name__, str(exc) or "no answer")
                self._failing = True
