"""What the dispatcher function does for each job event: launch, apply status, stop.

Every event may arrive twice, late or out of order; every change is a compare-and-set on the
job's state, so a repeated `submitted` never launches twice and a terminal state never moves.

Admission: a backend with a capacity (local) gets at most that many jobs holding resources
(`active`); free slots go to PENDING jobs chosen fairly across owners, each within its own
running limit, by quotas.next_jobs_to_start.
Admission decisions are serialised by a file lock under the jobs folder, because several
dispatcher threads or processes may count free slots at once (only the local backend, which
runs on one machine, has a capacity).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterator
from typing import Any

from ..backends.base import Backend, LaunchError
from ..config import Settings
from ..ids import epoch
from ..quotas import next_jobs_to_start
from ..store.base import Record, Store
from . import finished
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
    USAGE,
    is_terminal,
)

log = logging.getLogger(__name__)

MAX_LAUNCH_ATTEMPTS = 5  # system launch errors are retried (by the monitor) this many times
CAS_RETRIES = 5
FINISH_WAIT = 5.0  # seconds a runner gets to exit after its final event before it is stopped
QUEUED = "Queued: waiting for a free slot"
FINAL_STATES = (SUCCESS, FAILURE, TIMED_OUT)  # what a runner may report

_thread_lock = threading.Lock()  # flock is per open file: threads of one process need this too


@contextlib.contextmanager
def admission_lock(settings: Settings) -> Iterator[None]:
    """Serialise slot counting and launching among threads and processes of this machine."""
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    with _thread_lock, open(settings.jobs_dir / ".admission.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _terminal_changes(state: str, now: float, settings: Settings, job: Record, **fields: Any) -> dict[str, Any]:
    changes = {"state": state, "finished": now, "expires": expiry(job, now, settings.result_lifetime)}
    changes.update(fields)
    return changes


def launch_job(store: Store, backend: Backend, settings: Settings, job: Record) -> bool:
    """Move one PENDING job to STARTED and launch it; True when this call launched it.

    Only the caller whose compare-and-set wins calls backend.launch, so concurrent deliveries
    of the same event launch once."""
    now = epoch()
    dispatch = dict(job.get("dispatch") or {})
    dispatch.update(attempts=int(dispatch.get("attempts", 0)) + 1, last=now)
    won = store.update(COLLECTION, job["id"], {
        "state": STARTED, "started": now, "active": True, "dispatch": dispatch,
        "status": f"Started on the {backend.name} backend: waiting for the runner",
    }, expect={"state": PENDING})
    if won is None:
        return False
    try:
        ref = backend.launch(won)
    except LaunchError as exc:
        _launch_failed(store, settings, won, str(exc), exc.error_class)
        return False
    except Exception as exc:  # noqa: BLE001 - an unexpected backend error is a system error: retried
        log.exception("launching job %s failed", job["id"])
        _launch_failed(store, settings, won, f"backend error ({type(exc).__name__})", SYSTEM)
        return False
    # The runner may already have reported (even finished): only the reference is written here.
    store.update(COLLECTION, job["id"], {"backend_ref": ref}, expect={"backend_ref": None})
    log.info("job %s launched on the %s backend", job["id"], backend.name, extra={"job_id": job["id"]})
    _stop_if_ended_meanwhile(store, backend, job["id"])
    return True


def _launch_failed(store: Store, settings: Settings, job: Record, message: str, error_class: str) -> None:
    now = epoch()
    attempts = int((job.get("dispatch") or {}).get("attempts", 1))
    if error_class == USAGE or attempts >= MAX_LAUNCH_ATTEMPTS:
        changes = _terminal_changes(FAILURE, now, settings, job, active=False, error_class=error_class,
                                    status=f"Could not be launched: {message}", elapsed=0.0)
        store.update(COLLECTION, job["id"], changes, expect={"state": STARTED})
        return
    store.update(COLLECTION, job["id"], {
        "state": PENDING, "active": False, "started": None,
        "status": f"Launch failed ({message}); it will be retried automatically",
    }, expect={"state": STARTED})


def _stop_if_ended_meanwhile(store: Store, backend: Backend, job_id: str) -> None:
    """A cancel or timeout that landed while backend.launch ran may have found nothing to stop."""
    job = store.get(COLLECTION, job_id)
    # (an end the runner reported itself is released by release_finished, gently)
    if job and job["state"] in (ABORTED, TIMED_OUT) and job.get("active"):
        stop_job(store, backend, job)


def stop_job(store: Store, backend: Backend, job: Record) -> bool:
    """Free the backend resources of a terminal job; True when they are freed."""
    try:
        backend.cancel(job)
        backend.release(job)
    except Exception:  # noqa: BLE001 - keep `active`: the monitor tries again
        log.exception("stopping job %s failed", job["id"])
        return False
    store.update(COLLECTION, job["id"], {"active": False}, expect={"active": True})
    return True


def fill_slots(store: Store, backend: Backend, settings: Settings) -> list[str]:
    """Launch waiting jobs into free slots, chosen fairly across owners within each owner's
    running limit (quotas.next_jobs_to_start); returns the ids launched."""
    capacity = backend.capacity()
    if capacity is None:  # the cluster queues by itself: only the per-owner limits apply
        return [job["id"] for job in next_jobs_to_start(store, settings, None)
                if launch_job(store, backend, settings, job)]
    launched: list[str] = []
    with admission_lock(settings):
        free = capacity - store.count(COLLECTION, {"active": True})
        for job in next_jobs_to_start(store, settings, free) if free > 0 else []:
            if len(launched) >= free:
                break
            if launch_job(store, backend, settings, job):
                launched.append(job["id"])
    return launched


def on_submitted(store: Store, backend: Backend, bus: Any, settings: Settings, job_id: str) -> dict[str, Any]:
    """`caesar.jobs.submitted`: launch the job now, or leave it queued PENDING (a later finished
    job or the monitor fills the slot). Any job chosen fairly may start, not only this one."""
    job = store.get(COLLECTION, job_id)
    if job is None or job["state"] != PENDING:
        return {"job_id": job_id, "action": "ignored"}  # unknown, or already launched: idempotent
    launched = fill_slots(store, backend, settings)
    if job_id in launched:
        return {"job_id": job_id, "action": "launched", "launched": launched}
    finished.announce(bus, store.get(COLLECTION, job_id))  # only when its launch failed for good
    attempts = int((job.get("dispatch") or {}).get("attempts", 0))
    # Say why it waits, unless meanwhile another delivery launched it or a launch failed (whose
    # status message must stay).
    if store.update(COLLECTION, job_id, {"status": QUEUED},
                    expect={"state": PENDING, "dispatch.attempts": attempts}) is None:
        return {"job_id": job_id, "action": "ignored", "launched": launched}
    return {"job_id": job_id, "action": "queued", "launched": launched}


def _progress(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return max(0, min(100, int(value)))


def _apply_running(store: Store, job_id: str, data: dict[str, Any]) -> bool:
    """started/progress: PENDING|STARTED -> RUNNING, then progress only increases."""
    for _ in range(CAS_RETRIES):
        job = store.get(COLLECTION, job_id)
        if job is None or job["state"] not in ACTIVE:
            return False
        current = int(job.get("progress") or 0)
        progress = _progress(data.get("progress"), current)
        message = str(data.get("message") or "")[:500] or f"Running: {progress}%"
        if job["state"] in (PENDING, STARTED):
            changes = {"state": RUNNING, "progress": max(progress, current), "status": message,
                       "active": True}
            if job.get("started") is None:
                changes["started"] = epoch()
            expect: dict[str, Any] = {"state": job["state"]}
        else:
            if progress <= current:
                return False  # late or duplicate progress
            changes = {"progress": progress, "status": message}
            expect = {"state": RUNNING, "progress": {"lt": progress}}
        if store.update(COLLECTION, job_id, changes, expect=expect) is not None:
            return True
    return False


def _apply_finished(store: Store, settings: Settings, job_id: str, data: dict[str, Any], *,
                    keep_slot: bool) -> Record | None:
    """finished: the single move to a terminal state; later copies find it terminal and stop.
    With keep_slot (a backend with a capacity) `active` stays: release_finished frees the slot
    once the runner is gone. Otherwise the backend cleans up by itself (Kubernetes TTL)."""
    job = store.get(COLLECTION, job_id)
    if job is None or job["state"] in TERMINAL:
        return None
    now = epoch()
    reported = data.get("state")
    state: str = reported if isinstance(reported, str) and reported in FINAL_STATES else FAILURE
    exit_code = data.get("exit_code")
    exit_code = exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None
    error_class = data.get("error_class") if data.get("error_class") in (USAGE, SYSTEM, TIMEOUT) else None
    if state == TIMED_OUT:
        error_class = TIMEOUT
    elif state == FAILURE and error_class is None:
        error_class = SYSTEM
    elapsed = data.get("elapsed")
    if not isinstance(elapsed, int | float) or isinstance(elapsed, bool):
        elapsed = max(0.0, now - float(job.get("started") or job["created"]))
    products = [str(p) for p in data.get("products") or [] if isinstance(p, str)]
    message = str(data.get("message") or "")[:500] or {
        SUCCESS: "Completed", FAILURE: "Failed", TIMED_OUT: "Exceeded its time limit"}[state]
    changes = _terminal_changes(state, now, settings, job, exit_status=exit_code, error_class=error_class,
                                elapsed=float(elapsed), products=products, status=message)
    cpu = data.get("cpu_seconds")
    if isinstance(cpu, int | float) and not isinstance(cpu, bool) and cpu >= 0:
        changes["cpu_seconds"] = float(cpu)
    if not keep_slot:
        changes["active"] = False
    if state == SUCCESS:
        changes["progress"] = 100
    return store.update(COLLECTION, job_id, changes, expect={"state": {"in": list(ACTIVE)}})


def release_finished(store: Store, backend: Backend, job: Record) -> None:
    """Free the slot of a job whose runner reported its end. The runner exits right after its
    final event; waiting for that (briefly) before the slot is reused keeps the concurrency
    limit true for processes, not only for records. Leftovers are then stopped."""
    try:
        backend.wait_gone(job, FINISH_WAIT)
    except Exception:  # noqa: BLE001 - stop_job below decides
        pass
    stop_job(store, backend, job)


def on_status(store: Store, backend: Backend, bus: Any, settings: Settings, data: dict[str, Any]) -> dict[str, Any]:
    """`caesar.jobs.status` from a runner: apply it when it moves the job forward, else ignore."""
    job_id = data.get("job_id") if isinstance(data, dict) else None
    if not isinstance(job_id, str):
        return {"action": "ignored", "reason": "no job_id"}
    phase = data.get("phase")
    if phase in ("started", "progress"):
        applied = _apply_running(store, job_id, data)
        return {"job_id": job_id, "action": "applied" if applied else "ignored"}
    if phase == "finished":
        done = _apply_finished(store, settings, job_id, data, keep_slot=backend.capacity() is not None)
        if done is not None:
            log.info("job %s finished: %s", job_id, done["state"], extra={"state": done["state"]})
        # Also for a repeated report: an earlier announcement may have been lost (same event id).
        finished.announce(bus, done or store.get(COLLECTION, job_id))
        if done is None:
            # A redelivered copy after a crash inside release_finished still frees the slot.
            done = store.get(COLLECTION, job_id)
            if done is None or not is_terminal(done["state"]) or not done.get("active"):
                return {"job_id": job_id, "action": "ignored"}
        if done.get("active"):
            release_finished(store, backend, done)
        launched = fill_slots(store, backend, settings)
        return {"job_id": job_id, "action": "applied", "launched": launched}
    return {"job_id": job_id, "action": "ignored", "reason": "unknown phase"}


def on_cancel(store: Store, backend: Backend, settings: Settings, job_id: str) -> dict[str, Any]:
    """`caesar.jobs.cancel`: stop the processes of a job already marked ABORTED (or TIMED-OUT)."""
    job = store.get(COLLECTION, job_id)
    if job is None or not is_terminal(job["state"]) or not job.get("active"):
        return {"job_id": job_id, "action": "ignored"}
    # Errors propagate: the handler answers 5xx and the connector redelivers the event later.
    backend.cancel(job)
    backend.release(job)
    store.update(COLLECTION, job_id, {"active": False}, expect={"active": True})
    return {"job_id": job_id, "action": "stopped", "launched": fill_slots(store, backend, settings)}
