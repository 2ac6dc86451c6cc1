"""End-of-job figures for the metrics (issue 17 §2), counted once per job by the notifier as
each `caesar.jobs.finished` arrives: finished jobs by (app, state, error class), run durations
by (app, state), dispatch latency (submission to start), and a recent mean run time per app.

These are counters in the Prometheus sense: they only grow (the store's running totals shrink
when old jobs expire, which a counter must not do). One record, stats/"metrics", changed by
compare-and-set on its `version`; each job is counted at most once, claimed by a
compare-and-set of its `counted` flag first."""

from __future__ import annotations

import bisect
from typing import Any

from ..jobs.records import COLLECTION
from ..jobs.states import SUCCESS, TERMINAL
from ..store.base import DuplicateId, Record, Store

STATS_ID = "metrics"
# Histogram upper bounds (seconds), +Inf implied: finder runs last seconds to hours; a dispatch
# takes milliseconds when a slot is free and as long as the queue when none is.
DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)
RECENT_WEIGHT = 0.2  # of the newest run in the recent mean: about the last ten runs count
CAS_RETRIES = 20
SEP = "|"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def empty() -> Record:
    return {"id": STATS_ID, "owner": "system", "created": 0.0, "version": 0, "finished": {}, "duration": {},
            "dispatch": {"count": 0, "sum": 0.0, "buckets": [0] * (len(LATENCY_BUCKETS) + 1)}, "recent": {}}


def _observe(series: dict[str, Any], value: float, bounds: tuple[float, ...]) -> dict[str, Any]:
    buckets = list(series.get("buckets") or [0] * (len(bounds) + 1))
    buckets[bisect.bisect_left(bounds, value)] += 1  # le semantics: value <= bound
    return {"count": int(series.get("count", 0)) + 1, "sum": float(series.get("sum", 0.0)) + value,
            "buckets": buckets}


def add_job(doc: Record, job: Record) -> Record:
    """`doc` with one ended job counted in (pure: the caller stores it)."""
    out = {**doc}
    app, state = str(job.get("app") or "unknown"), str(job["state"])
    key = SEP.join((app, state, str(job.get("error_class") or "none")))
    out["finished"] = {**doc.get("finished", {}), key: int(doc.get("finished", {}).get(key, 0)) + 1}
    elapsed = _number(job.get("elapsed"))
    if elapsed is not None and job.get("started") is not None:
        series_key = SEP.join((app, state))
        durations = dict(doc.get("duration", {}))
        durations[series_key] = _observe(durations.get(series_key, {}), max(0.0, elapsed), DURATION_BUCKETS)
        out["duration"] = durations
        if state == SUCCESS:
            previous = (doc.get("recent") or {}).get(app)
            mean = elapsed if previous is None else previous + RECENT_WEIGHT * (elapsed - previous)
            out["recent"] = {**doc.get("recent", {}), app: mean}
    started, created = _number(job.get("started")), _number(job.get("created"))
    if started is not None and created is not None:
        out["dispatch"] = _observe(doc.get("dispatch", {}), max(0.0, started - created), LATENCY_BUCKETS)
    out["version"] = int(doc.get("version", 0)) + 1
    return out


def load(store: Store) -> Record:
    return store.get("stats", STATS_ID) or empty()


def record_end(store: Store, job_id: str) -> bool:
    """Count the ended job `job_id` once; True when this call counted it."""
    job = store.get(COLLECTION, job_id)
    if job is None or job.get("state") not in TERMINAL or job.get("counted"):
        return False
    if store.update(COLLECTION, job_id, {"counted": True}, expect={"counted": None}) is None:
        return False  # another delivery counts it
    for _ in range(CAS_RETRIES):
        doc = store.get("stats", STATS_ID)
        if doc is None:
            try:
                store.insert("stats", add_job(empty(), job))
                return True
            except DuplicateId:
                continue
        changes = {k: v for k, v in add_job(doc, job).items() if k != "id"}
        if store.update("stats", STATS_ID, changes, expect={"version": doc.get("version", 0)}):
            return True
    return False
