"""The monitoring examples (issue 17 §2): the Grafana dashboard is valid JSON whose every query
names a family the metrics endpoint exposes, with a panel for each; the scrape config points at
the route and authenticates; and the exposition, read with prometheus-client's parser, holds the
families it promises (histograms with cumulative buckets) on a real store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from caesar_faas.ops import ended, metrics
from caesar_faas.ops.capacity import cpu_request, needed_cores

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "infra" / "k8s" / "monitoring"
SUFFIXES = ("_bucket", "_sum", "_count")


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in metrics.METRIC_NAMES:
            return name[: -len(suffix)]
    return name


def test_dashboard_is_json_with_a_panel_per_metric():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["panels"]
    used: set[str] = set()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = {base_name(n) for n in re.findall(r"\bcaesar_[a-z_]+", target["expr"])}
            assert names and names <= metrics.METRIC_NAMES, (panel["title"], names - metrics.METRIC_NAMES)
            used |= names
    assert used == metrics.METRIC_NAMES  # every family is on the dashboard


def test_scrape_config_targets_the_metrics_route_with_a_token():
    (doc,) = list(yaml.safe_load_all((MONITORING / "prometheus-scrape.yaml").read_text()))
    config = yaml.safe_load(doc["data"]["caesar.yml"])
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/function/monitor/metrics"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]
    assert job["static_configs"][0]["targets"]


def test_exposition_on_a_real_store(sqlite_store):
    job = {"id": "j1", "owner": "u", "app": "sep", "state": "SUCCESS", "error_class": None, "created": 10.0,
           "started": 12.0, "elapsed": 42.0}
    sqlite_store.insert("jobs", dict(job))
    assert ended.record_end(sqlite_store, "j1") and not ended.record_end(sqlite_store, "j1")
    text = metrics.render(sqlite_store, None).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expected = metrics.METRIC_NAMES - {"caesar_nats_up", "caesar_connector_pending",
                                       "caesar_events_dead_letters_total"}  # no NATS given
    exposed = {name + ("_total" if families[name].type == "counter" else "") for name in families}
    assert expected <= exposed, expected - exposed
    duration = {(s.name, s.labels.get("le")): s.value for s in families["caesar_job_duration_seconds"].samples}
    assert duration[("caesar_job_duration_seconds_bucket", "30.0")] == 0
    assert duration[("caesar_job_duration_seconds_bucket", "60.0")] == 1
    assert duration[("caesar_job_duration_seconds_bucket", "+Inf")] == 1
    assert duration[("caesar_job_duration_seconds_sum", None)] == 42.0
    latency = {(s.name, s.labels.get("le")): s.value for s in families["caesar_dispatch_latency_seconds"].samples}
    assert latency[("caesar_dispatch_latency_seconds_bucket", "1.0")] == 0
    assert latency[("caesar_dispatch_latency_seconds_bucket", "2.5")] == 1


def test_capacity_formula():
    assert cpu_request({"requests": {"cpu": "500m"}}) == 0.5 and cpu_request({}) == 1.0
    assert needed_cores(0, 3, 60, 1.0, 300) == 3  # nothing waits: what runs
    assert needed_cores(12, 0, 60, 1.0, 300) == 2  # a slot starts 6 jobs in 5 minutes
    assert needed_cores(12, 2, 600, 2.0, 300) == 28  # runs longer than the wait: a slot each
    assert needed_cores(1, 0, 10, 1.0, 300) == 1
