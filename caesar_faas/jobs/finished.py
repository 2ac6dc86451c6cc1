"""`caesar.jobs.finished`: told once a job has reached its terminal state, by whoever won the
compare-and-set that put it there (the dispatcher for a runner's report, cancel, the monitor).

A terminal state never changes, so every announcement of one job's end carries the same event id
and JetStream drops copies inside its window; later copies reach the notifier, whose own
bookkeeping sends each notification at most once. A failed publish is logged, not raised: the
state is already stored. For jobs that asked for notifications, the monitor's sweep announces
again those whose notifications are still due (sweep_due), which also covers the terminal moves
that happen where no bus is at hand (a launch that failed for good)."""

from __future__ import annotations

import logging
from typing import Any

from ..events.subjects import JOBS_FINISHED
from ..store.base import Record, Store
from .records import COLLECTION
from .states import TERMINAL

log = logging.getLogger(__name__)

SWEEP_AFTER = 60.0  # seconds after the end before the sweep steps in for the normal path
# Jobs that ended longer ago are not swept any more: a bus outage longer than this loses their
# notifications (logged), but every monitor run reads only the jobs of a short recent band.
SWEEP_WINDOW = 600.0


def finished_event_id(job_id: str, state: str) -> str:
    return f"{job_id}-finished-{state}"


def announce(bus: Any, job: Record | None) -> bool:
    """Publish the end of `job` (a terminal record); False when it could not be published."""
    if bus is None or job is None or job.get("state") not in TERMINAL:
        return False
    data = {"job_id": job["id"], "owner": job["owner"], "app": job.get("app") or "unknown",
            "state": job["state"], "error_class": job.get("error_class")}
    try:
        bus.publish(JOBS_FINISHED, data, about=job["id"], event_id=finished_event_id(job["id"], job["state"]))
        return True
    except Exception as exc:  # noqa: BLE001 - the state is stored; the sweep announces it again
        log.warning("publishing %s for job %s failed: %s", JOBS_FINISHED, job["id"], type(exc).__name__)
        return False


def announce_ids(store: Store, bus: Any, job_ids: list[str]) -> int:
    """announce() for each job id (the monitor's terminal moves of one pass)."""
    return sum(announce(bus, store.get(COLLECTION, job_id)) for job_id in job_ids)


def sweep_due(store: Store, bus: Any, now: float, lifetime: float, batch: int = 100) -> int:
    """Announce again the ended jobs whose notifications are still due.

    Reads only jobs that ended between SWEEP_WINDOW and SWEEP_AFTER seconds ago, through the
    (active, expires) index (a terminal job expires `lifetime` seconds after its end), so the cost follows
    the recent throughput, never the size of the store."""
    low, high = now - SWEEP_WINDOW + lifetime, now - SWEEP_AFTER + lifetime
    count = 0
    # `active: False` (an ended job's slot is long released by then) lets the (active, expires)
    # index bound the band: without it the band was a walk of every job (18x at 100k jobs).
    for job in store.find(COLLECTION, {"active": False, "expires": {"gt": low, "lt": high}, "notify_pending": True},
                          limit=batch, order="expires"):
        count += announce(bus, job)
    return count
