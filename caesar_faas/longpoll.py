"""Long-poll WAIT (Rubin UWS lesson): hold the answer until what the client already knows changes,
or the wait runs out. `wait_for_change` watches one job's state (or, when the client says which it
knows, its progress too: status); `wait_for_page_change` one page of a list (jobs: the web page's
live table). Both poll the store; a job's waiter is also woken at once by a write of this process
(store/changes.py). A deployment with many waiters could subscribe to caesar.jobs.status instead."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from .errors import BadRequest
from .jobs.control import load_job
from .jobs.states import ALL, TERMINAL
from .store import changes

POLL_INTERVAL = 0.5


def _state(job: dict[str, Any]) -> str:
    return str(job["state"])


def wait_for_change(store: Any, owner: str, is_admin: bool, job_id: str, *, wait: int,
                    since: str | None, since_progress: int | None = None,
                    key: Callable[[dict[str, Any]], str] = _state) -> dict[str, Any]:
    """`key` is what the client knows of the job: its state (native API, checked here) or its UWS
    phase (uws/service.py checks those)."""
    if since and key is _state and since not in ALL:
        raise BadRequest(f"state must be one of {', '.join(ALL)}", code="invalid_query")
    if wait <= 0:  # answered at once: nothing to watch (watching takes a lock every thread shares)
        return load_job(store, owner, job_id, admin=is_admin)
    with changes.watching("jobs", job_id) as watch:  # woken at once by this process's writes
        job = load_job(store, owner, job_id, admin=is_admin)
        deadline = time.monotonic() + wait
        known = since or key(job)

        def unchanged(job: dict[str, Any]) -> bool:
            return key(job) == known and (since_progress is None or job.get("progress", 0) == since_progress)

        while unchanged(job) and job["state"] not in TERMINAL and time.monotonic() < deadline:
            watch.wait(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
            job = load_job(store, owner, job_id, admin=is_admin)
    return job


# Fields of a listed job that never count as a change: elapsed_time grows every second while a
# job runs (the page ticks it itself), so hashing it would wake every waiter at every poll.
_VOLATILE = ("elapsed_time",)


def page_version(page: dict[str, Any], items: str) -> str:
    """A short fingerprint of one page of a list: equal pages, equal versions."""
    stable = [{k: v for k, v in item.items() if k not in _VOLATILE} for item in page[items]]
    doc = json.dumps([stable, page.get("next_cursor")], sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:20]


def wait_for_page_change(load: Callable[[], dict[str, Any]], items: str, *, wait: int,
                         since: str | None) -> dict[str, Any]:
    """The page `load` answers, with its "version"; when `since` is the version the client
    already holds, re-read it until it differs or `wait` seconds pass. Each read is the same
    index-backed page query (at most `limit` rows), so a waiter costs a few small queries a second
    whatever the size of the store."""
    page = load()
    version = page_version(page, items)
    deadline = time.monotonic() + wait
    while since is not None and version == since and time.monotonic() < deadline:
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
        page = load()
        version = page_version(page, items)
    return {**page, "version": version}
