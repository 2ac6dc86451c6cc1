"""Running totals: the accounting figures, maintained by the store with every write of a job or
file record, so reading them costs O(users + apps), never O(records).

Each record contributes integer counters to two aggregates: its owner's (`user:<owner>`) and,
for jobs, its app's (`app:<app>`). A write applies contribution(after) - contribution(before),
in the same transaction as the record on SQLite, right after the compare-and-set on MongoDB
(only the writer that won it applies the delta, so each transition counts once; a crash in
between is what `rebuild` repairs). What is counted (issue 6 §5 definitions):

user:  jobs, jobs_by_state|<state>, jobs_by_app|<app>, cpu_us (runner-reported cpu_seconds),
       wall_us (wall_seconds() of finished jobs), files_by_status|<status>,
       bytes_by_status|<status>; `latest`, a high-water mark of created/started/finished
       (last activity never goes backwards, also when the record that set it is deleted);
app:   jobs, jobs_by_state|<state>; and `runs`, a histogram of `elapsed` over SUCCESS jobs.
site:  one aggregate (`site:all`) of files_by_status|<status> and bytes_by_status|<status> over
       every user, so the metrics' stored files and bytes cost one read, not one per user.

The histogram is a dense array of RUN_BUCKETS integers in every app aggregate, allocated when the
aggregate is created, so reading an app's figures costs the same however many jobs it ran and
however widely their durations spread (a sparse map of filled buckets grew with both). A write's
delta names the buckets it moves as `run|<bucket>` increments; the store adds them in place (a
list index on SQLite, `$inc` of `runs.<bucket>` on MongoDB).

Seconds are kept as integer microseconds and durations as bucket counts, so every counter is an
integer and a rebuild from the records gives exactly the incremental values. Counter keys never
contain '.' or '$' (names are escaped), so MongoDB can $inc them in place.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import accumulate
from typing import Any

from ..jobs.states import SUCCESS, TERMINAL

Counts = dict[str, int]

USER, APP, SITE = "user", "app", "site"
KINDS = (USER, APP, SITE)
SITE_NAME = "all"  # the one site aggregate's name
META_ID = "meta"  # marks a store whose totals were built (or rebuilt) from its records
# The layout of the aggregates; a store whose meta record names another (or none) recounts its
# totals once when opened (version 2: the dense `runs` array replaced sparse run|<b> counters;
# version 3: the site aggregate).
FORMAT = 3
SEP = "|"
# Durations: bucket 0 holds [0, SMALLEST]; bucket b >= 1 holds (SMALLEST*R^(b-1), SMALLEST*R^b]
# with R = 10^(1/BUCKETS_PER_DECADE): 64 per decade is a 3.7% wide bucket, so a quantile read from
# the histogram is within about 2% of the exact one whatever the number of jobs. DECADES of them
# reach 10^7 s (116 days, far past any job timeout); a longer run is counted in the last bucket.
SMALLEST = 1e-3
BUCKETS_PER_DECADE = 64
DECADES = 10
RUN_BUCKETS = 1 + BUCKETS_PER_DECADE * DECADES
RUNS = "runs"  # the app aggregate's field holding the histogram
RUN_PREFIX = f"run{SEP}"  # a delta's increment of one bucket: run|<bucket>
_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24", SEP: "%7C"}


def escape(name: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in name)


def unescape(name: str) -> str:
    for plain, coded in sorted(_ESCAPES.items(), key=lambda item: item[0] == "%"):
        name = name.replace(coded, plain)
    return name


def aggregate_id(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def timestamp(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 string; None when absent or unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def number(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else 0.0


def wall_seconds(job: dict[str, Any]) -> float:
    """Wall time a finished job consumed (0 for unfinished jobs and jobs that never started)."""
    if job.get("state") not in TERMINAL:
        return 0.0
    elapsed = job.get("elapsed")
    if isinstance(elapsed, int | float) and not isinstance(elapsed, bool):
        return max(0.0, number(elapsed))
    started, finished = timestamp(job.get("started")), timestamp(job.get("finished"))
    return max(0.0, finished - started) if started is not None and finished is not None else 0.0


def micro(seconds: float) -> int:
    return round(seconds * 1_000_000)


def bucket(seconds: float) -> int:
    if seconds <= SMALLEST:
        return 0
    return min(RUN_BUCKETS - 1, 1 + math.floor(math.log10(seconds / SMALLEST) * BUCKETS_PER_DECADE - 1e-9))


def empty_runs() -> list[int]:
    return [0] * RUN_BUCKETS


def bucket_bounds(index: int) -> tuple[float, float]:
    if index <= 0:
        return 0.0, SMALLEST
    return SMALLEST * 10 ** ((index - 1) / BUCKETS_PER_DECADE), SMALLEST * 10 ** (index / BUCKETS_PER_DECADE)


def quantiles(histogram: Sequence[int], fractions: Sequence[float]) -> list[float | None]:
    """The fraction-quantiles (numpy's linear rule on ranks) of the values counted in the dense
    `histogram` (count per bucket index), each value taken at its rank's place spread evenly
    through its bucket. One pass over the fixed number of buckets for all fractions."""
    ends = list(accumulate(histogram))  # ends[i]: values in buckets 0..i
    total = ends[-1] if ends else 0
    if total <= 0:
        return [None for _ in fractions]

    def value_at(rank: int) -> float:
        i = bisect_right(ends, rank)  # the first bucket whose end passes rank: never empty
        lo, hi = bucket_bounds(i)
        return lo + (hi - lo) * (rank - (ends[i] - histogram[i]) + 0.5) / histogram[i]

    out: list[float | None] = []
    for fraction in fractions:
        position = (total - 1) * fraction
        low, high = math.floor(position), math.ceil(position)
        first = value_at(low)
        out.append(first + (value_at(high) - first) * (position - low))
    return out


def quantile(histogram: Sequence[int], fraction: float) -> float | None:
    return quantiles(histogram, [fraction])[0]


def _job(record: dict[str, Any]) -> tuple[dict[str, Counts], float | None]:
    owner, state, app = record["owner"], str(record.get("state") or "unknown"), str(record.get("app") or "unknown")
    user: Counts = {"jobs": 1, f"jobs_by_state{SEP}{escape(state)}": 1, f"jobs_by_app{SEP}{escape(app)}": 1,
                    "cpu_us": micro(number(record.get("cpu_seconds"))), "wall_us": micro(wall_seconds(record))}
    per_app: Counts = {"jobs": 1, f"jobs_by_state{SEP}{escape(state)}": 1}
    elapsed = record.get("elapsed")
    if state == SUCCESS and isinstance(elapsed, int | float) and not isinstance(elapsed, bool) \
            and math.isfinite(elapsed):
        per_app[f"{RUN_PREFIX}{bucket(max(0.0, float(elapsed)))}"] = 1
    times = [t for t in (timestamp(record.get(k)) for k in ("created", "started", "finished")) if t is not None]
    return {aggregate_id(USER, owner): user, aggregate_id(APP, app): per_app}, max(times, default=None)


def _file(record: dict[str, Any]) -> tuple[dict[str, Counts], float | None]:
    status = escape(str(record.get("status") or "unknown"))
    size = int(number(record.get("size")))
    counts = {f"files_by_status{SEP}{status}": 1, f"bytes_by_status{SEP}{status}": size}
    return {aggregate_id(USER, record["owner"]): counts, aggregate_id(SITE, SITE_NAME): dict(counts)}, \
        timestamp(record.get("created"))


def contribution(collection: str, record: dict[str, Any] | None) -> tuple[dict[str, Counts], float | None]:
    """(aggregate id -> counters, latest activity) that one record adds to the totals."""
    if record is None or not isinstance(record.get("owner"), str):
        return {}, None
    if collection == "jobs":
        return _job(record)
    if collection == "files":
        return _file(record)
    return {}, None


def counted(collection: str) -> bool:
    return collection in ("jobs", "files")


class Delta:
    """What one write changes: counter increments per aggregate, and the latest activity seen
    per user aggregate (applied as a maximum)."""

    def __init__(self) -> None:
        self.counts: dict[str, Counts] = {}
        self.latest: dict[str, float] = {}

    def add(self, collection: str, record: dict[str, Any] | None, sign: int) -> None:
        parts, latest = contribution(collection, record)
        for agg, counts in parts.items():
            target = self.counts.setdefault(agg, {})
            for key, value in counts.items():
                target[key] = target.get(key, 0) + sign * value
        if latest is not None and sign > 0 and record is not None:
            agg = aggregate_id(USER, record["owner"])
            self.latest[agg] = max(self.latest.get(agg, latest), latest)

    def items(self) -> Iterable[tuple[str, Counts, float | None]]:
        """(aggregate id, non-zero increments, latest or None) for each aggregate touched."""
        for agg in sorted(set(self.counts) | set(self.latest)):
            counts = {k: v for k, v in self.counts.get(agg, {}).items() if v}
            latest = self.latest.get(agg)
            if counts or latest is not None:
                yield agg, counts, latest


def change(collection: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> Delta:
    delta = Delta()
    if counted(collection):
        delta.add(collection, after, +1)
        delta.add(collection, before, -1)
        if before is not None and after is not None:
            # A high-water mark only moves for what this write brought in.
            _, old = contribution(collection, before)
            agg = aggregate_id(USER, after["owner"])
            if old is not None and delta.latest.get(agg) is not None and delta.latest[agg] <= old:
                del delta.latest[agg]
    return delta


def new_aggregate(agg: str) -> dict[str, Any]:
    kind, _, name = agg.partition(":")
    doc: dict[str, Any] = {"id": agg, "kind": kind, "name": name, "counts": {}, "latest": None}
    if kind == APP:
        doc[RUNS] = empty_runs()
    return doc


def run_bucket(key: str) -> int | None:
    """The bucket a `run|<bucket>` delta key moves, None for any other counter."""
    return int(key[len(RUN_PREFIX):]) if key.startswith(RUN_PREFIX) else None


def apply(doc: dict[str, Any], counts: Counts, latest: float | None) -> dict[str, Any]:
    """`doc` (an aggregate) with `counts` added (run|<b> into its `runs` array) and `latest`
    maxed in; zero counters dropped."""
    merged = dict(doc.get("counts") or {})
    runs: list[int] | None = None
    for key, value in counts.items():
        index = run_bucket(key)
        if index is not None:
            if runs is None:
                runs = list(doc.get(RUNS) or empty_runs())
            runs[index] += value
            continue
        merged[key] = merged.get(key, 0) + value
        if merged[key] == 0:
            del merged[key]
    current = doc.get("latest")
    newest = current if latest is None else latest if current is None else max(current, latest)
    out = {**doc, "counts": merged, "latest": newest}
    if runs is not None:
        out[RUNS] = runs
    return out


class Builder:
    """Totals computed from scratch over streamed records: memory O(users + apps)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def add(self, collection: str, record: dict[str, Any]) -> None:
        delta = Delta()
        delta.add(collection, record, +1)
        for agg, counts, latest in delta.items():
            self.docs[agg] = apply(self.docs.get(agg) or new_aggregate(agg), counts, latest)

    def result(self, previous: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """The rebuilt aggregates; `latest` keeps the previous high-water mark when higher."""
        out = []
        for agg in sorted(self.docs):
            doc = self.docs[agg]
            doc = apply(doc, {}, (previous.get(agg) or {}).get("latest"))
            if doc["counts"]:
                out.append(doc)
        return out


def groups(counts: Counts) -> dict[str, dict[str, int]]:
    """{group: {name: value}} of the `group|name` counters (names unescaped), plain counters
    under "" (one pass over the keys)."""
    out: dict[str, dict[str, int]] = {"": {}}
    for key, value in counts.items():
        group, bar, name = key.partition(SEP)
        if bar:
            out.setdefault(group, {})[unescape(name) if "%" in name else name] = value
        else:
            out[""][key] = value
    return out


def split(counts: Counts, group: str) -> dict[str, int]:
    """{name: value} of the `group|name` counters (names unescaped)."""
    return groups(counts).get(group, {})
