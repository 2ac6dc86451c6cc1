"""Long-poll WAIT for job status (Rubin UWS lesson): hold the answer until the job's state (or,
when the client says which it knows, its progress) differs from the one the client already
knows, or the wait runs out. Polls the store; a deployment with
many waiters could subscribe to caesar.jobs.status instead."""

from __future__ import annotations

import time
from typing import Any

from .jobs.control import load_job
from .jobs.states import TERMINAL

POLL_INTERVAL = 0.5


def wait_for_change(store: Any, owner: str, is_admin: bool, job_id: str, *, wait: int,
                    since: str | None, since_progress: int | None = None) -> dict[str, Any]:
    job = load_job(store, owner, job_id, admin=is_admin)
    deadline = time.monotonic() + wait
    known = since or job["state"]

    def unchanged(job: dict[str, Any]) -> bool:
        return job["state"] == known and (since_progress is None or job.get("progress", 0) == since_progress)

    while unchanged(job) and job["state"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
        job = load_job(store, owner, job_id, admin=is_admin)
    return job
