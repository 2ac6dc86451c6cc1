"""Usage figures (issue 6 §5), read from the running totals the store keeps (store.totals) and
served by the accounting function.

Per user: files and bytes stored (status ready|pending|invalid, the same count quotas use; every status
also under files_by_status), jobs by state and by app, CPU seconds (sum of the runner-reported
`cpu_seconds`, missing counts 0), wall seconds (sum of `elapsed` of finished jobs; `finished -
started` when elapsed is missing), last activity (latest upload, submission, start or end; a
high-water mark, kept when the record that set it expires).
Per app: job counts by state, success rate = SUCCESS / (SUCCESS + FAILURE + TIMED-OUT) (ABORTED
is the user's choice, not the app's fault; null when nothing finished), and the median and 95th
percentile of `elapsed` over SUCCESS jobs, read from a fixed array of log-spaced buckets (within
about 2% of the exact value, whatever the number of jobs).

compute() costs O(users + apps): it never reads a job or file record, so the accounting and
monitor functions stay flat in time and memory at any store size. The snapshot is plain JSON
with users and apps as lists (owner ids may contain dots, which some databases refuse as field
names).
"""

from __future__ import annotations

from typing import Any

from .jobs.states import FAILURE, SUCCESS, TIMED_OUT
from .quotas import COUNTED_FILE_STATUSES
from .store.base import Record, Store
from .store.totals import APP, RUNS, SEP, USER, groups, quantiles

STATS_ID = "accounting"
FINISHED_BY_APP = (SUCCESS, FAILURE, TIMED_OUT)
STATE_PREFIX = f"jobs_by_state{SEP}"


def _empty_user(owner: str) -> dict[str, Any]:
    return {"user": owner, "files": 0, "bytes": 0, "files_by_status": {}, "jobs": 0, "jobs_by_state": {},
            "jobs_by_app": {}, "cpu_seconds": 0.0, "wall_seconds": 0.0, "last_activity": None}


def user_figures(aggregate: Record) -> dict[str, Any]:
    found = groups(aggregate["counts"])
    plain, files_by_status, bytes_by_status = found[""], found.get("files_by_status", {}), found.get("bytes_by_status", {})
    return {
        "user": aggregate["name"],
        "files": sum(files_by_status.get(s, 0) for s in COUNTED_FILE_STATUSES),
        "bytes": sum(bytes_by_status.get(s, 0) for s in COUNTED_FILE_STATUSES),
        "files_by_status": dict(sorted(files_by_status.items())),
        "jobs": plain.get("jobs", 0),
        "jobs_by_state": dict(sorted(found.get("jobs_by_state", {}).items())),
        "jobs_by_app": dict(sorted(found.get("jobs_by_app", {}).items())),
        "cpu_seconds": plain.get("cpu_us", 0) / 1e6,
        "wall_seconds": plain.get("wall_us", 0) / 1e6,
        "last_activity": aggregate.get("latest"),
    }


def app_figures(aggregate: Record) -> dict[str, Any]:
    counts = aggregate["counts"]
    runs = aggregate.get(RUNS) or ()  # a fixed number of buckets: the same cost for any number of jobs
    states = groups({k: v for k, v in counts.items() if k.startswith(STATE_PREFIX)}).get("jobs_by_state", {})
    finished = sum(states.get(state, 0) for state in FINISHED_BY_APP)
    median, p95 = quantiles(runs, (0.5, 0.95))
    return {
        "app": aggregate["name"], "jobs": counts.get("jobs", 0), "jobs_by_state": dict(sorted(states.items())),
        "finished": finished, "succeeded": states.get(SUCCESS, 0),
        "success_rate": states.get(SUCCESS, 0) / finished if finished else None,
        "run_time": {"count": sum(runs), "median": median, "p95": p95},
    }


def compute(store: Store, now: float, owner: str | None = None) -> dict[str, Any]:
    """Everyone's figures and every app's (or only `owner`'s user figures, apps left empty)."""
    user_list = [user_figures(a) for a in store.totals(USER, owner)]
    apps = [app_figures(a) for a in store.totals(APP)] if owner is None else []
    return {
        "generated": float(now),
        "users": user_list,
        "apps": apps,
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
