"""The reconciler run by cron (ARCHITECTURE §6, issue 4 point 7).

Each run is short and safe to repeat, and touches only jobs that still matter: active states,
terminal jobs still holding backend resources, and a bounded batch of expired ones. It never
lists all jobs. Steps, each a compare-and-set so a concurrent dispatcher wins or loses cleanly:
1. STARTED/RUNNING jobs past their deadline -> TIMED-OUT and stopped; the others are polled and
   a job whose final event was lost gets its outcome from the backend (GONE -> FAILURE/system);
2. terminal jobs still `active` (a lost cancel event, an interrupted stop) are stopped;
3. PENDING jobs not picked up for `redispatch_after` seconds are published again, and free
   slots are filled directly (so a dead bus does not stall the queue);
4. jobs not ended at their UWS destruction time (`expires` set while active) are aborted;
5. expired terminal jobs lose their products and their record;
6. orphans: jobs a backend still runs (Backend.launched_jobs, the Slurm backend) that the store
   says are finished, or does not know, are cancelled.
A job the backend reports ABORTED (cancelled outside the service: `scancel`) ends ABORTED.
"""

from __future__ import annotations

import logging
from typing import Any

from ..backends.base import Backend, PollResult
from ..config import Settings
from ..ids import epoch
from ..runner.contract import output_prefix
from ..store.base import Record, Store
from . import finished
from .dispatch import MAX_LAUNCH_ATTEMPTS, fill_slots, stop_job
from .records import COLLECTION, expiry
from .states import (
    ABORTED,
    ACTIVE,
    FAILURE,
    PENDING,
    RUNNING,
    STARTED,
    SUCCESS,
    SYSTEM,
    TERMINAL,
    TIMED_OUT,
    TIMEOUT,
)
from .submit import publish_submitted

log = logging.getLogger(__name__)

TIMEOUT_GRACE = 30.0  # seconds past the timeout before the monitor steps in (the runner ends first)
LAUNCH_GRACE = 60.0  # a STARTED job without backend_ref younger than this is still being launched
ORPHAN_GRACE = 60.0  # a runner still exits for a while after its final event: not an orphan yet
DEFAULT_BATCH = 100
LOST_MESSAGE = "runner died without a final status"


def run_monitor(store: Store, backend: Backend, bus: Any, settings: Settings, now: float | None = None, *,
                storage: Any = None, batch: int = DEFAULT_BATCH, grace: float = TIMEOUT_GRACE) -> dict[str, Any]:
    """One reconciliation pass; returns what it did (job ids per action)."""
    now = epoch() if now is None else now
    summary: dict[str, Any] = {key: [] for key in (
        "timed_out", "reconciled", "lost", "relaunch", "stopped", "redispatched", "launched", "destroyed",
        "expired", "aborted", "orphans", "errors")}
    for job in store.find(COLLECTION, {"state": {"in": [STARTED, RUNNING]}}):
        _guard(summary, job, _check_active, store, backend, settings, job, now, grace, summary)
    leftovers = store.find(COLLECTION, {"active": True, "state": {"in": sorted(TERMINAL)}}, limit=batch)
    for job in leftovers:
        if _guard(summary, job, stop_job, store, backend, job):
            summary["stopped"].append(job["id"])
    if _redispatch(store, bus, settings, now, batch, summary):
        # Fill free slots directly too, so a dead bus or a lost event never stalls the queue
        # (only for stale jobs: fresh ones are the dispatcher's).
        summary["launched"] = _guard(summary, {"id": None}, fill_slots, store, backend, settings) or []
    for job in store.find(COLLECTION, {"expires": {"lt": now}, "state": {"in": sorted(ACTIVE)}}, limit=batch):
        _guard(summary, job, _destroy_due, store, backend, settings, job, now, summary)
    if storage is not None:
        _expire(store, backend, storage, now, batch, summary)
    _cancel_orphans(store, backend, now, summary)
    finished.announce_ids(store, bus, summary["timed_out"] + summary["reconciled"] + summary["lost"]
                          + summary["aborted"])
    return summary


def _destroy_due(store: Store, backend: Backend, settings: Settings, job: Record, now: float,
                 summary: dict[str, Any]) -> None:
    """A job whose destruction time (UWS) came before it ended: aborted and stopped now, so the
    expiry pass removes it with its products."""
    done = _finish(store, settings, job, now, ABORTED, error_class=None, exit_status=None,
                   status="Aborted: its destruction time passed before it ended")
    if done is None:
        return
    summary["destroyed"].append(job["id"])
    if done.get("active"):
        stop_job(store, backend, done)


def _guard(summary: dict[str, Any], job: Record, func: Any, *args: Any) -> Any:
    """One job's trouble must not stop the pass: record it and go on."""
    try:
        return func(*args)
    except Exception as exc:  # noqa: BLE001
        log.exception("monitor: job %s", job.get("id"))
        summary["errors"].append({"job_id": job.get("id"), "error": type(exc).__name__})
        return None


def _finish(store: Store, settings: Settings, job: Record, now: float, state: str, **fields: Any) -> Record | None:
    started = job.get("started")
    changes = {"state": state, "finished": now, "expires": expiry(job, now, settings.result_lifetime),
               "elapsed": max(0.0, now - float(started)) if started else 0.0}
    changes.update(fields)
    # Only a terminal state is protected: STARTED -> RUNNING meanwhile does not change the verdict.
    return store.update(COLLECTION, job["id"], changes, expect={"state": {"in": sorted(ACTIVE)}})


def _check_active(store: Store, backend: Backend, settings: Settings, job: Record, now: float,
                  grace: float, summary: dict[str, Any]) -> None:
    begun = float(job.get("started") or job["created"])
    if now > begun + float(job["timeout"]) + grace:
        done = _finish(store, settings, job, now, TIMED_OUT, error_class=TIMEOUT, exit_status=None,
                       status=f"Exceeded its time limit of {job['timeout']} s")
        if done is not None:
            summary["timed_out"].append(job["id"])
            stop_job(store, backend, done)
        return
    launching_since = float((job.get("dispatch") or {}).get("last") or begun)
    if job.get("backend_ref") is None and now - launching_since < LAUNCH_GRACE:
        return  # a dispatcher is inside backend.launch right now
    result = backend.poll(job)
    if result.state in (RUNNING, PENDING):
        return
    if result.state == ABORTED:
        done = _finish(store, settings, job, now, ABORTED, exit_status=None, error_class=None,
                       status=f"Aborted: {result.message or 'cancelled outside the service'}")
        if done is not None:
            summary["aborted"].append(job["id"])
            stop_job(store, backend, done)
        return
    if result.state in (SUCCESS, FAILURE, TIMED_OUT):
        fields = result_fields(result, "reconciled by the monitor: the final event was lost")
        done = _finish(store, settings, job, now, result.state, **fields)
        if done is not None:
            summary["reconciled"].append(job["id"])
            stop_job(store, backend, done)
        return
    # GONE: no process and no result. Never launched at all (the dispatcher died inside
    # launch_job) -> back to PENDING for a retry; launched and then lost -> FAILURE (system).
    attempts = int((job.get("dispatch") or {}).get("attempts", 1))
    never_ran = job.get("backend_ref") is None and not (result.details or {}).get("launched", False)
    if never_ran and job["state"] == STARTED and attempts < MAX_LAUNCH_ATTEMPTS:
        back = store.update(COLLECTION, job["id"], {
            "state": PENDING, "active": False, "started": None,
            "status": "Launch was interrupted; it will be retried automatically"},
            expect={"state": STARTED, "backend_ref": None})
        if back is not None:
            summary["relaunch"].append(job["id"])
        return
    done = _finish(store, settings, job, now, FAILURE, error_class=SYSTEM, exit_status=None,
                   status=f"Failed: {result.message or LOST_MESSAGE}")
    if done is not None:
        summary["lost"].append(job["id"])
        stop_job(store, backend, done)


def result_fields(result: PollResult, why: str) -> dict[str, Any]:
    """The job fields a final PollResult (the runner's result.json) gives, when its event is lost."""
    error_class = result.error_class or {FAILURE: SYSTEM, TIMED_OUT: TIMEOUT}.get(result.state)
    details = result.details or {}
    fields: dict[str, Any] = {
        "exit_status": result.exit_code, "error_class": error_class,
        "status": result.message or f"{result.state} ({why})",
        "products": [p for p in details.get("products") or [] if isinstance(p, str)],
    }
    if isinstance(details.get("elapsed"), int | float):
        fields["elapsed"] = float(details["elapsed"])
    if result.state == SUCCESS:
        fields["progress"] = 100
    return fields


def _cancel_orphans(store: Store, backend: Backend, now: float, summary: dict[str, Any]) -> None:
    """Backend jobs whose record is gone, or ended ORPHAN_GRACE ago with its resources released:
    nothing will ever stop them otherwise (a cancel lost before it reached the backend, a record
    expired). Listed by the backend itself, bounded by what it runs, never by the store's size."""
    listing = getattr(backend, "launched_jobs", None)
    for orphan in (_guard(summary, {"id": None}, listing) if listing else None) or []:
        job = store.get(COLLECTION, orphan["id"])
        if job is not None and not (job["state"] in TERMINAL and not job.get("active")
                                    and now - float(job.get("finished") or 0) > ORPHAN_GRACE):
            continue  # still ours to run, being stopped by step 2, or its runner is just exiting
        if _guard(summary, orphan, lambda o: backend.cancel(o) or True, orphan):
            summary["orphans"].append(orphan["id"])


def _redispatch(store: Store, bus: Any, settings: Settings, now: float, batch: int,
                summary: dict[str, Any]) -> int:
    """Publish again the PENDING jobs nobody picked up (oldest first); returns how many."""
    stale = 0
    # Held UWS jobs wait for PHASE=RUN, not for a backend: never re-published.
    for job in store.find(COLLECTION, {"state": PENDING, "hold": {"nin": [True]}}, limit=batch):
        dispatch = dict(job.get("dispatch") or {})
        if float(dispatch.get("last") or job["created"]) > now - settings.redispatch_after:
            continue
        if int(dispatch.get("attempts", 0)) >= MAX_LAUNCH_ATTEMPTS:
            finished.announce(bus, _finish(store, settings, job, now, FAILURE, error_class=SYSTEM, active=False,
                                           status=f"Could not be launched after {MAX_LAUNCH_ATTEMPTS} attempts"))
            continue
        count = int(dispatch.get("redispatches", 0)) + 1
        dispatch.update(last=now, redispatches=count)
        won = store.update(COLLECTION, job["id"], {"dispatch": dispatch}, expect={"state": PENDING})
        if won is None:
            continue
        stale += 1
        # A new event id: the stable "-submitted" one may still be inside the duplicate window.
        if bus is not None and publish_submitted(bus, won, event_id=f"{job['id']}-redispatch-{count}"):
            summary["redispatched"].append(job["id"])
    return stale


def _expire(store: Store, backend: Backend, storage: Any, now: float, batch: int,
            summary: dict[str, Any]) -> None:
    for job in store.find(COLLECTION, {"expires": {"lt": now}, "active": False}, limit=batch, order="expires"):
        if job["state"] not in TERMINAL:
            continue
        if _guard(summary, job, _expire_one, store, backend, storage, job, now):
            summary["expired"].append(job["id"])


def _expire_one(store: Store, backend: Backend, storage: Any, job: Record, now: float) -> bool:
    storage.delete_prefix(output_prefix(job["owner"], job["id"]))
    purge = getattr(backend, "purge", None)  # local work folders; other backends clean up themselves
    if purge is not None:
        purge(job)
    return store.delete(COLLECTION, job["id"], expect={"expires": {"lt": now}, "active": False})
