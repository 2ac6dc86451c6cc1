"""GET /function/monitor/metrics: the Prometheus text exposition (prometheus-client), built per
scrape from counters that are kept as things happen, never from a scan of jobs or files:

- the store's running totals (store.totals, issue 11): jobs by app and state, the queue, files
  and bytes stored; O(apps + users) documents read;
- the end-of-job counters (ops/ended.py): finished jobs, run durations, dispatch latency, the
  recent mean run time per app; one document;
- JetStream's own counters (ops/jetstream.py): consumer lag, dead letters;
- the drain switch (ops/drain.py).
Per-user figures stay in accounting, not in labels (a label per user would grow the series with
the user base)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ..apps.registry import list_apps
from ..jobs.states import ALL, PENDING, RUNNING, STARTED
from ..quotas import COUNTED_FILE_STATUSES
from ..store import totals
from ..store.base import Store
from . import capacity, drain, ended, jetstream

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Every family this module can expose (the dashboard in infra/k8s/monitoring uses only these).
METRIC_NAMES = frozenset({
    "caesar_intake_open", "caesar_jobs", "caesar_queue_depth", "caesar_jobs_finished_total",
    "caesar_job_duration_seconds", "caesar_dispatch_latency_seconds", "caesar_capacity_needed_cores",
    "caesar_files", "caesar_storage_bytes", "caesar_nats_up", "caesar_connector_pending",
    "caesar_events_dead_letters_total"})
# Those read from the store's running totals (O(apps + users) documents per scrape).
FROM_TOTALS = frozenset({"caesar_jobs", "caesar_queue_depth", "caesar_capacity_needed_cores", "caesar_files",
                         "caesar_storage_bytes"})
SEP = "|"


def job_counts(store: Store) -> dict[str, dict[str, int]]:
    """{app: {state: jobs}} from the store's running totals (one document per app)."""
    return {doc["name"]: totals.split(doc.get("counts") or {}, "jobs_by_state") for doc in store.totals("app")}


def file_totals(store: Store) -> tuple[int, int]:
    """(files, bytes) stored, as quotas count them (ready and pending), over every user."""
    files = size = 0
    for doc in store.totals(totals.SITE, totals.SITE_NAME):  # one aggregate, however many users
        counts = doc.get("counts") or {}
        by_status, bytes_by_status = totals.split(counts, "files_by_status"), totals.split(counts, "bytes_by_status")
        files += sum(v for k, v in by_status.items() if k in COUNTED_FILE_STATUSES)
        size += sum(v for k, v in bytes_by_status.items() if k in COUNTED_FILE_STATUSES)
    return files, size


def _histogram(name: str, doc: str, labels: list[str], bounds: tuple[float, ...],
               series: dict[tuple[str, ...], dict[str, Any]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for values, data in sorted(series.items()):
        counts = list(data.get("buckets") or [0] * (len(bounds) + 1))
        cumulative, running = [], 0
        for bound, count in zip([*map(str, bounds), "+Inf"], counts, strict=True):
            running += int(count)
            cumulative.append((bound, running))
        family.add_metric(list(values), cumulative, sum_value=float(data.get("sum", 0.0)))
    return family


def families(store: Store, nats_url: str | None) -> list[Metric]:
    out: list[Metric] = []
    intake = GaugeMetricFamily("caesar_intake_open", "1 while the service accepts new uploads and jobs, 0 draining")
    intake.add_metric([], 1.0 if drain.state(store)["accepting"] else 0.0)
    out.append(intake)

    counts = job_counts(store)
    apps = sorted({spec.name for spec in list_apps()} | set(counts))
    jobs = GaugeMetricFamily("caesar_jobs", "Jobs in the store by state and app (running totals)",
                             labels=["state", "app"])
    queue = GaugeMetricFamily("caesar_queue_depth", "PENDING jobs waiting for capacity", labels=["app"])
    for app in apps:
        by_state = counts.get(app, {})
        for state in ALL:
            jobs.add_metric([state, app], float(by_state.get(state, 0)))
        queue.add_metric([app], float(by_state.get(PENDING, 0)))
    out += [jobs, queue]

    figures = ended.load(store)
    finished = CounterMetricFamily("caesar_jobs_finished", "Jobs that reached a terminal state",
                                   labels=["app", "state", "error_class"])
    for key, value in sorted((figures.get("finished") or {}).items()):
        finished.add_metric(key.split(SEP), float(value))
    out.append(finished)
    out.append(_histogram("caesar_job_duration_seconds", "Run time of ended jobs (started to end)",
                          ["app", "state"], ended.DURATION_BUCKETS,
                          {tuple(k.split(SEP)): v for k, v in (figures.get("duration") or {}).items()}))
    out.append(_histogram("caesar_dispatch_latency_seconds", "Submission to start of each ended job",
                          [], ended.LATENCY_BUCKETS, {(): figures.get("dispatch") or {}}))

    out.append(_capacity(counts, apps, figures))

    stored = file_totals(store)
    files = GaugeMetricFamily("caesar_files", "Files stored (ready and pending), every user")
    files.add_metric([], float(stored[0]))
    size = GaugeMetricFamily("caesar_storage_bytes", "Bytes of the stored files, every user")
    size.add_metric([], float(stored[1]))
    out += [files, size]

    if nats_url:
        stream = jetstream.read(nats_url)
        up = GaugeMetricFamily("caesar_nats_up", "1 when JetStream answered this scrape")
        up.add_metric([], 1.0 if stream.reachable else 0.0)
        out.append(up)
        if stream.reachable:
            pending = GaugeMetricFamily("caesar_connector_pending",
                                        "Messages a consumer has not had acknowledged yet (JetStream lag)",
                                        labels=["consumer"])
            for name, value in sorted(stream.pending.items()):
                pending.add_metric([name], float(value))
            dead = CounterMetricFamily("caesar_events_dead_letters",
                                       "Dead letters kept per original subject (they age out with the stream)",
                                       labels=["subject"])
            for subject, value in sorted(stream.dead_letters.items()):
                dead.add_metric([subject], float(value))
            out += [pending, dead]
    return out


def _capacity(counts: dict[str, dict[str, int]], apps: list[str], figures: dict[str, Any]) -> GaugeMetricFamily:
    from ..apps.registry import get_app

    wait = capacity.target_wait()
    family = GaugeMetricFamily("caesar_capacity_needed_cores",
                               f"Cores needed to start every waiting job within {wait:g} s (CAESAR_TARGET_WAIT)",
                               labels=["app"])
    recent = figures.get("recent") or {}
    for app in apps:
        spec = get_app(app)
        by_state = counts.get(app, {})
        mean = recent.get(app) or float(getattr(spec, "default_timeout", 0) or 3600)
        cpu = capacity.cpu_request(getattr(spec, "resources", {}) or {})
        family.add_metric([app], capacity.needed_cores(by_state.get(PENDING, 0),
                                                       by_state.get(STARTED, 0) + by_state.get(RUNNING, 0),
                                                       float(mean), cpu, wait))
    return family


class _Collector:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def render(store: Store, nats_url: str | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(families(store, nats_url)))
    return generate_latest(registry)
