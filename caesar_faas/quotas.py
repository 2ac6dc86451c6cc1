"""Per-user quotas (issue 6 §4): limits, current use, the checks the HTTP layer calls before it
stores anything, and the fair choice of which waiting jobs may start.

Defaults come from Settings (CAESAR_QUOTA_*, CAESAR_MAX_JOB_TIMEOUT); an admin stores per-user
overrides in the `users` record (`limits: {name: int}`). Refusals share one JSON shape:
    {"error": "quota_exceeded", "status": "<text naming the limit>", "limit": "<name>",
     "used": <current use>, "max": <limit>, "requested": <what this request adds>}
(for max_job_timeout, used = requested = the timeout asked for).
Status codes: storage (bytes, files) and a job timeout above the maximum -> 413 (the request asks
for more than the caller may have); too many queued jobs -> 429 with Retry-After (wait and retry).

The checks read then act, so two requests racing at the boundary may both pass: the overshoot is
bounded by the requests in flight at that moment, which is acceptable for fair-use quotas.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from .config import Settings
from .errors import BadRequest, PayloadTooLarge, TooManyRequests
from .ids import epoch
from .jobs.states import PENDING, RUNNING, STARTED
from .store.base import DuplicateId, Record, Store

# Files that occupy (or are about to occupy) storage: a pending presigned upload reserves its size,
# and a refused (invalid) one counts until the monitor removes it, so refusals cannot pile up.
COUNTED_FILE_STATUSES = ["ready", "pending", "invalid"]
RUNNING_STATES = [STARTED, RUNNING]
MAX_LIMIT = 2**53 - 1  # JSON-safe and fits every store's integer type
QUEUE_RETRY_AFTER = 60

LIMIT_KEYS = ("bytes", "files", "queued_jobs", "running_jobs", "max_job_timeout")
_HUMAN = {
    "bytes": "stored bytes", "files": "number of files", "queued_jobs": "queued jobs",
    "running_jobs": "running jobs", "max_job_timeout": "maximum job timeout (seconds)",
}


@dataclass(frozen=True)
class Limits:
    bytes: int
    files: int
    queued_jobs: int
    running_jobs: int
    max_job_timeout: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int
    queued_jobs: int
    running_jobs: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def default_limits(settings: Settings) -> Limits:
    return Limits(bytes=settings.quota_bytes, files=settings.quota_files,
                  queued_jobs=settings.quota_queued_jobs, running_jobs=settings.quota_running_jobs,
                  max_job_timeout=settings.max_job_timeout)


def _valid_limit(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_LIMIT


def overrides(store: Store, owner: str) -> dict[str, int]:
    """The per-user overrides stored for `owner` (invalid stored values are ignored)."""
    user = store.get("users", owner) or {}
    stored = user.get("limits") or {}
    if not isinstance(stored, dict):
        return {}
    return {key: stored[key] for key in LIMIT_KEYS if _valid_limit(stored.get(key))}


def limits_for(store: Store, owner: str, settings: Settings) -> Limits:
    """The effective limits of `owner`: defaults from settings, replaced by stored overrides."""
    return Limits(**{**default_limits(settings).as_dict(), **overrides(store, owner)})


def set_limits(store: Store, owner: str, changes: Any) -> dict[str, int]:
    """Apply an admin's changes to `owner`'s overrides and return the stored overrides.

    `changes` maps limit names to non-negative integers; null removes the override (back to the
    default). Unknown names or other values -> 400 and nothing changes. The write is a
    compare-and-set on a version counter, retried if another admin wrote in between.
    """
    if not isinstance(changes, dict) or not changes:
        raise BadRequest("limits must be a non-empty JSON object", code="invalid_limits")
    unknown = sorted(set(changes) - set(LIMIT_KEYS))
    if unknown:
        raise BadRequest(f"unknown limit(s) {', '.join(map(str, unknown))}; known: {', '.join(LIMIT_KEYS)}",
                         code="invalid_limits")
    for key, value in changes.items():
        if value is not None and not _valid_limit(value):
            raise BadRequest(f"limit {key!r} must be an integer between 0 and {MAX_LIMIT}, or null",
                             code="invalid_limits")
    for _ in range(20):
        user = store.get("users", owner)
        if user is None:
            fresh = {key: value for key, value in changes.items() if value is not None}
            try:
                store.insert("users", {"id": owner, "owner": owner, "created": epoch(),
                                       "limits": fresh, "limits_version": 1})
                return fresh
            except DuplicateId:
                continue  # created meanwhile: merge into it
        stored = user.get("limits")
        current: dict[str, Any] = stored if isinstance(stored, dict) else {}
        merged = {**current, **changes}
        merged = {key: value for key, value in merged.items() if value is not None}
        version = user.get("limits_version")
        if store.update("users", owner, {"limits": merged, "limits_version": (version or 0) + 1},
                        expect={"limits_version": version}) is not None:
            return merged
    raise RuntimeError(f"could not update the limits of {owner}: too much contention")


def usage(store: Store, owner: str) -> Usage:
    """What `owner` uses now: stored files and bytes, queued (PENDING) and running jobs, read
    from the running totals the store keeps (one small record, whatever the number of files)."""
    from .store.totals import USER, split

    found = store.totals(USER, owner)
    counts = found[0]["counts"] if found else {}
    files, sizes, states = (split(counts, group) for group in ("files_by_status", "bytes_by_status", "jobs_by_state"))
    return Usage(
        bytes=sum(sizes.get(status, 0) for status in COUNTED_FILE_STATUSES),
        files=sum(files.get(status, 0) for status in COUNTED_FILE_STATUSES),
        queued_jobs=states.get(PENDING, 0),
        running_jobs=sum(states.get(state, 0) for state in RUNNING_STATES),
    )


def _refuse(error_class: type[PayloadTooLarge] | type[TooManyRequests], limit: str, used: int,
            maximum: int, requested: int, headers: dict[str, str] | None = None) -> Exception:
    if limit == "max_job_timeout":
        message = f"quota exceeded: {_HUMAN[limit]} limit is {maximum}, this request asks for {requested}"
    else:
        message = (f"quota exceeded: {_HUMAN[limit]} limit is {maximum}, current use {used}, "
                   f"this request adds {requested}")
    return error_class(message, code="quota_exceeded", headers=headers, limit=limit, used=used,
                       max=maximum, requested=requested)


def check_upload(store: Store, owner: str, size: int, settings: Settings) -> None:
    """Raise 413 when storing one more file of `size` bytes would exceed a storage limit."""
    limits = limits_for(store, owner, settings)
    current = usage(store, owner)
    if current.files + 1 > limits.files:
        raise _refuse(PayloadTooLarge, "files", current.files, limits.files, 1)
    if current.bytes + size > limits.bytes:
        raise _refuse(PayloadTooLarge, "bytes", current.bytes, limits.bytes, size)


def check_submit(store: Store, owner: str, timeout: int | None, settings: Settings) -> int:
    """Raise when `owner` may not queue one more job with `timeout`; return the timeout to use.

    A job timeout over the caller's maximum is a 413 (see module docstring); no timeout means the
    default, lowered to the caller's maximum when an admin set a smaller one. A full queue is a
    429 with Retry-After.
    """
    limits = limits_for(store, owner, settings)
    if timeout is None:
        effective = min(settings.default_job_timeout, limits.max_job_timeout)
    else:
        if timeout > limits.max_job_timeout:
            raise _refuse(PayloadTooLarge, "max_job_timeout", timeout, limits.max_job_timeout, timeout)
        effective = timeout
    queued = usage(store, owner).queued_jobs
    if queued + 1 > limits.queued_jobs:
        raise _refuse(TooManyRequests, "queued_jobs", queued, limits.queued_jobs, 1,
                      headers={"Retry-After": str(QUEUE_RETRY_AFTER)})
    return effective


def is_launched(job: Record) -> bool:
    """A PENDING job the dispatcher already handed to a backend (it holds a slot): the backend
    contract stores launch()'s reference in `backend_ref`, so its presence is the signal."""
    return bool(job.get("backend_ref"))


def running_slots_free(store: Store, owner: str, settings: Settings) -> int:
    """How many more of `owner`'s jobs may start now."""
    jobs = store.find("jobs", {"owner": owner, "state": {"in": [PENDING, *RUNNING_STATES]}})
    occupied = sum(1 for job in jobs if job["state"] != PENDING or is_launched(job))
    return max(0, limits_for(store, owner, settings).running_jobs - occupied)


def next_jobs_to_start(store: Store, settings: Settings, capacity_free: int | None) -> list[Record]:
    """The waiting jobs to launch now, oldest first per owner and fairly across owners.

    Waiting = PENDING and not yet launched. Each pick goes to the owner with the fewest jobs
    holding slots (running, launched, or picked in this call), ties broken by who has waited
    longest; so owners take turns (round-robin) and a newcomer is not stuck behind someone
    with a long queue. Never more than an owner's running limit, never more than
    `capacity_free` in total (None = the backend queues by itself, no global cap).
    """
    if capacity_free is not None and capacity_free <= 0:
        return []
    active = store.find("jobs", {"state": {"in": [PENDING, *RUNNING_STATES]}})
    occupied: Counter[str] = Counter()
    waiting: dict[str, list[Record]] = defaultdict(list)
    for job in active:  # ascending by created, then id: oldest first
        if job.get("hold"):
            continue  # a UWS job waiting for PHASE=RUN: neither waiting for a slot nor holding one
        if job["state"] == PENDING and not is_launched(job):
            waiting[job["owner"]].append(job)
        else:
            occupied[job["owner"]] += 1
    free = {owner: limits_for(store, owner, settings).running_jobs - occupied[owner] for owner in waiting}
    heap = [(occupied[owner], jobs[0]["created"], jobs[0]["id"], owner)
            for owner, jobs in waiting.items() if free[owner] > 0]
    heapq.heapify(heap)
    chosen: list[Record] = []
    position = Counter[str]()
    while heap and (capacity_free is None or len(chosen) < capacity_free):
        held, _, _, owner = heapq.heappop(heap)
        job = waiting[owner][position[owner]]
        chosen.append(job)
        position[owner] += 1
        free[owner] -= 1
        if free[owner] > 0 and position[owner] < len(waiting[owner]):
            head = waiting[owner][position[owner]]
            heapq.heappush(heap, (held + 1, head["created"], head["id"], owner))
    return chosen
