"""Usage figures (issue 6 §5), computed by the monitor and served by the accounting function.

Per user: files and bytes stored (status ready|pending|invalid, the same count quotas use; every status
also under files_by_status), jobs by state and by app, CPU seconds (sum of the runner-reported
`cpu_seconds`, missing counts 0), wall seconds (sum of `elapsed` of finished jobs; `finished -
started` when elapsed is missing), last activity (latest upload, submission, start or end).
Per app: job counts by state, success rate = SUCCESS / (SUCCESS + FAILURE + TIMED-OUT) (ABORTED
is the user's choice, not the app's fault; null when nothing finished), and the median and 95th
percentile (linear interpolation, as numpy's default) of `elapsed` over SUCCESS jobs.

The snapshot is plain JSON with users and apps as lists (owner ids may contain dots, which some
databases refuse as field names). compute() reads every file and job record once: O(records),
fine for thousands; beyond that, the store should aggregate (SQL GROUP BY / Mongo $group) or the
monitor should keep running totals updated on each transition.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Any

from .jobs.states import FAILURE, SUCCESS, TERMINAL, TIMED_OUT
from .quotas import COUNTED_FILE_STATUSES
from .store.base import Record, Store

STATS_ID = "accounting"
FINISHED_BY_APP = (SUCCESS, FAILURE, TIMED_OUT)


def timestamp(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 string; None when absent or unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def wall_seconds(job: Record) -> float:
    """Wall time a finished job consumed (0 for unfinished jobs and jobs that never started)."""
    if job.get("state") not in TERMINAL:
        return 0.0
    if isinstance(job.get("elapsed"), int | float) and not isinstance(job.get("elapsed"), bool):
        return max(0.0, float(job["elapsed"]))
    started, finished = timestamp(job.get("started")), timestamp(job.get("finished"))
    return max(0.0, finished - started) if started is not None and finished is not None else 0.0


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear-interpolation percentile of `values` (fraction in [0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _empty_user(owner: str) -> dict[str, Any]:
    return {"user": owner, "files": 0, "bytes": 0, "files_by_status": {}, "jobs": 0, "jobs_by_state": {},
            "jobs_by_app": {}, "cpu_seconds": 0.0, "wall_seconds": 0.0, "last_activity": None}


def _touch(user: dict[str, Any], *values: Any) -> None:
    for value in values:
        ts = timestamp(value)
        if ts is not None and (user["last_activity"] is None or ts > user["last_activity"]):
            user["last_activity"] = ts


def _app_figures(app: str, jobs: list[Record]) -> dict[str, Any]:
    states = Counter(job.get("state") for job in jobs)
    finished = sum(states[state] for state in FINISHED_BY_APP)
    runs = [float(job["elapsed"]) for job in jobs if job.get("state") == SUCCESS
            and isinstance(job.get("elapsed"), int | float) and not isinstance(job.get("elapsed"), bool)]
    return {
        "app": app, "jobs": len(jobs), "jobs_by_state": dict(sorted(states.items())),
        "finished": finished, "succeeded": states[SUCCESS],
        "success_rate": states[SUCCESS] / finished if finished else None,
        "run_time": {"count": len(runs), "median": percentile(runs, 0.5), "p95": percentile(runs, 0.95)},
    }


def compute(store: Store, now: float, owner: str | None = None) -> dict[str, Any]:
    """A snapshot of everyone's figures (or only `owner`'s, e.g. live for one caller)."""
    where = {"owner": owner} if owner is not None else None
    users: dict[str, dict[str, Any]] = {}

    def user(name: str) -> dict[str, Any]:
        return users.setdefault(name, _empty_user(name))

    for record in store.find("files", where):
        figures = user(record["owner"])
        status = record.get("status") or "unknown"
        figures["files_by_status"][status] = figures["files_by_status"].get(status, 0) + 1
        if status in COUNTED_FILE_STATUSES:
            figures["files"] += 1
            figures["bytes"] += int(_number(record.get("size")))
        _touch(figures, record.get("created"))

    by_app: dict[str, list[Record]] = {}
    for job in store.find("jobs", where):
        figures = user(job["owner"])
        state, app = job.get("state") or "unknown", job.get("app") or "unknown"
        figures["jobs"] += 1
        figures["jobs_by_state"][state] = figures["jobs_by_state"].get(state, 0) + 1
        figures["jobs_by_app"][app] = figures["jobs_by_app"].get(app, 0) + 1
        figures["cpu_seconds"] += _number(job.get("cpu_seconds"))
        figures["wall_seconds"] += wall_seconds(job)
        _touch(figures, job.get("created"), job.get("started"), job.get("finished"))
        by_app.setdefault(app, []).append(job)

    user_list = [users[name] for name in sorted(users)]
    return {
        "generated": float(now),
        "users": user_list,
        "apps": [_app_figures(app, by_app[app]) for app in sorted(by_app)],
        "totals": {
            "users": len(user_list),
            "files": sum(u["files"] for u in user_list),
            "bytes": sum(u["bytes"] for u in user_list),
            "jobs": sum(u["jobs"] for u in user_list),
            "cpu_seconds": sum(u["cpu_seconds"] for u in user_list),
            "wall_seconds": sum(u["wall_seconds"] for u in user_list),
        },
    }


def for_user(snapshot: dict[str, Any] | None, owner: str) -> dict[str, Any]:
    """`owner`'s entry of a snapshot; zeros when the snapshot does not know them."""
    for entry in (snapshot or {}).get("users", []):
        if entry.get("user") == owner:
            return entry
    return _empty_user(owner)


def save(store: Store, snapshot: dict[str, Any]) -> None:
    """Replace the stored snapshot (stats id "accounting"); the monitor calls this each run."""
    store.upsert("stats", {**snapshot, "id": STATS_ID, "owner": "system", "created": snapshot["generated"]})


def load(store: Store) -> dict[str, Any] | None:
    """The last saved snapshot, or None before the monitor's first run."""
    record = store.get("stats", STATS_ID)
    if record is None:
        return None
    return {key: value for key, value in record.items() if key not in ("id", "owner", "created")}
