"""The job record stored in the `jobs` collection, and the view of it that users see.

Record fields (epoch seconds for times):
  id, owner, created, app, tag, options (validated, defaults filled), job_inputs (as sent),
  input {file_id, key, filename}, timeout (s), state, status (human message), progress (0-100),
  exit_status (int | None), error_class (None | usage | system | timeout),
  submitted, started, finished, elapsed (s), active (the backend may still hold resources),
  dispatch {attempts (launch attempts), last (epoch of the last launch try or publish),
  redispatches}, backend_ref (what backend.launch returned), products [names], expires.
UWS (caesar_faas/uws): hold (PENDING until PHASE=RUN: nothing dispatches it), destruction (epoch
s the user fixed; `expires` mirrors it so the monitor finds it), deleted (destroyed by the user:
the monitor removes it once no backend holds it).
"""

from __future__ import annotations

from typing import Any

from ..ids import epoch, iso_epoch
from ..store.base import Record
from .states import PENDING, TERMINAL

COLLECTION = "jobs"


def new_job(*, job_id: str, owner: str, app: str, tag: str, options: dict[str, Any],
            job_inputs: dict[str, Any], input_ref: dict[str, Any], timeout: int, now: float,
            status: str = "Submitted") -> Record:
    """A PENDING job as submit stores it."""
    return {
        "id": job_id,
        "owner": owner,
        "created": now,
        "app": app,
        "tag": tag,
        "options": options,
        "job_inputs": job_inputs,
        "input": input_ref,
        "timeout": timeout,
        "state": PENDING,
        "status": status,
        "progress": 0,
        "exit_status": None,
        "error_class": None,
        "submitted": now,
        "started": None,
        "finished": None,
        "elapsed": None,
        "active": False,
        "dispatch": {"attempts": 0, "last": now, "redispatches": 0},
        "backend_ref": None,
        "products": [],
        "expires": None,
    }


def expiry(job: Record, now: float, lifetime: float) -> float:
    """When an ending job's products and record go: its UWS destruction time when one was set,
    else `lifetime` seconds from now."""
    destruction = job.get("destruction")
    return float(destruction) if destruction is not None else now + lifetime


def elapsed_time(job: Record, now: float) -> float | None:
    """Seconds the job has run: final value once finished, live while it runs."""
    if job.get("elapsed") is not None:
        return round(float(job["elapsed"]), 3)
    started = job.get("started")
    if started is None:
        return None
    end = job.get("finished") or (None if job.get("state") in TERMINAL else now)
    return round(max(0.0, float(end) - float(started)), 3) if end is not None else None


def public_view(job: Record, now: float | None = None) -> dict[str, Any]:
    """caesar-rest's job fields plus progress, timestamps, error class and products.
    Store internals (backend_ref, dispatch bookkeeping, storage keys) never leave the service."""
    current = epoch() if now is None else now
    return {
        "job_id": job["id"],
        "owner": job["owner"],
        "submit_date": iso_epoch(job.get("created")),
        "app": job.get("app"),
        "job_inputs": job.get("job_inputs", {}),
        "data_inputs": (job.get("input") or {}).get("file_id"),
        "tag": job.get("tag", ""),
        "state": job.get("state"),
        "status": job.get("status", ""),
        "exit_status": job.get("exit_status"),
        "elapsed_time": elapsed_time(job, current),
        "progress": job.get("progress", 0),
        "started": iso_epoch(job.get("started")),
        "finished": iso_epoch(job.get("finished")),
        "error_class": job.get("error_class"),
        "timeout": job.get("timeout"),
        "products": list(job.get("products") or []),
        "expires": iso_epoch(job.get("expires")),
        **notifications_view(job),
    }


def notifications_view(job: Record) -> dict[str, Any]:
    """For a job that asked for notifications: what each channel did, e.g. {"notifications":
    {"webhook": {"status": "sent", "attempts": 1}}} (targets are not repeated back)."""
    if not job.get("notify"):
        return {}
    out = {}
    for channel in job["notify"]:
        done = job.get(f"notified_{channel}") or {}
        out[channel] = {"status": done.get("status", "due"), "attempts": int(done.get("attempts") or 0),
                        "detail": done.get("detail", "")}
    return {"notifications": out}
