"""What users do with their jobs: status, list, cancel. Owner scoping everywhere: another user's
job is answered exactly like a missing one (404); an admin sees every job."""

from __future__ import annotations

import logging
from typing import Any

from ..access import fetch_owned
from ..config import Settings, load_settings
from ..errors import BadRequest, Conflict
from ..events.subjects import JOBS_CANCEL
from ..ids import epoch
from ..store.base import Record, Store
from . import finished
from .records import COLLECTION, expiry, public_view
from .states import ABORTED, ALL, is_terminal

log = logging.getLogger(__name__)

CAS_RETRIES = 5
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
ABORTED_STATUS = "Aborted by the user"


def load_job(store: Store, owner: str, job_id: str, *, admin: bool = False) -> Record:
    """The job when the caller may see it, else NotFound with one text for missing and foreign."""
    return fetch_owned(store, COLLECTION, job_id, owner, admin, "job")


def get_status(store: Store, owner: str, job_id: str, *, admin: bool = False) -> dict[str, Any]:
    return public_view(load_job(store, owner, job_id, admin=admin))


def list_jobs(store: Store, owner: str, *, state: str | None = None, app: str | None = None,
              tag: str | None = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None,
              admin: bool = False) -> dict[str, Any]:
    """The caller's jobs, newest first: {"jobs": [views], "next_cursor": str | None}."""
    where: dict[str, Any] = {} if admin else {"owner": owner}
    if state is not None:
        if state not in ALL:
            raise BadRequest(f"unknown state {state!r} (one of {', '.join(ALL)})", option="state")
        where["state"] = state
    if app is not None:
        where["app"] = app
    if tag is not None:
        where["tag"] = tag
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"'limit' must be an integer between 1 and {MAX_LIMIT}", option="limit")
    try:
        page = store.page(COLLECTION, where, limit=limit, cursor=cursor or None)
    except ValueError as exc:
        raise BadRequest("invalid 'cursor'", option="cursor") from exc
    now = epoch()
    return {"jobs": [public_view(job, now) for job in page.items], "next_cursor": page.next_cursor}


def cancel_event_id(job_id: str) -> str:
    return f"{job_id}-cancel"


def cancel(store: Store, bus: Any, owner: str, job_id: str, *, admin: bool = False,
           settings: Settings | None = None) -> dict[str, Any]:
    """Abort a job: ABORTED at once in the store (compare-and-set from an active state), then
    `caesar.jobs.cancel` tells the dispatcher to stop its processes. Idempotent for an ABORTED
    job; Conflict (409) for a job that already finished otherwise."""
    lifetime = (settings or load_settings()).result_lifetime
    for _ in range(CAS_RETRIES):
        job = load_job(store, owner, job_id, admin=admin)
        if job["state"] == ABORTED:
            if job.get("active"):
                _publish_cancel(bus, job)  # the first event may have been lost: same id, deduplicated
            return public_view(job)
        if is_terminal(job["state"]):
            raise Conflict(f"job {job_id} already finished with state {job['state']}")
        now = epoch()
        started = job.get("started")
        changes = {"state": ABORTED, "status": ABORTED_STATUS, "finished": now, "expires": expiry(job, now, lifetime),
                   "elapsed": max(0.0, now - float(started)) if started else 0.0}
        done = store.update(COLLECTION, job_id, changes, expect={"state": job["state"]})
        if done is not None:
            finished.announce(bus, done)
            if done.get("active"):
                _publish_cancel(bus, done)
            return public_view(done)
    raise Conflict(f"job {job_id} is changing state, try again")


def _publish_cancel(bus: Any, job: Record) -> None:
    """A lost cancel event is not fatal: the monitor stops terminal jobs that are still active."""
    try:
        bus.publish(JOBS_CANCEL, {"job_id": job["id"], "owner": job["owner"]}, about=job["id"],
                    event_id=cancel_event_id(job["id"]))
    except Exception as exc:  # noqa: BLE001
        log.warning("publishing %s for job %s failed: %s", JOBS_CANCEL, job["id"], type(exc).__name__)

