"""Issue 17 §2 on the running local stack: after a scripted mix of jobs (successes, a timeout, a
cancel, a poison event), the Prometheus exposition at /function/monitor/metrics, read with
prometheus-client's own parser, agrees with the store; only admin or metrics tokens read it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import nats
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from caesar_faas.jobs.states import TERMINAL
from caesar_faas.store.sqlite import SQLiteStore
from tests.helpers import wait_for
from tests.synth import make_image


def scrape(stack) -> dict[str, list]:
    resp = stack.client("prom", ("metrics",)).get(stack.url + "/function/monitor/metrics", timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: dict[str, list], name: str, **labels) -> float:
    found = [v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items())]
    return sum(found)


@pytest.fixture(scope="module")
def mix(stack, tmp_path_factory):
    """Three successes, one timeout, one cancel and a poison event; waits until all ended."""
    path = tmp_path_factory.mktemp("metrics-images") / "m.fits"
    make_image(str(path), size=256, n_sources=8, seed=9)
    client = stack.client("mia")
    with open(path, "rb") as fh:
        file_id = client.post(stack.url + "/function/upload", files={"file": ("m.fits", fh)}, timeout=60).json()["uuid"]

    def submit(**extra):
        resp = client.post(stack.url + "/function/submit", timeout=30,
                           json={"app": "sep", "job_inputs": {}, "data_inputs": file_id, **extra})
        assert resp.status_code == 202, resp.text
        return resp.json()["job_id"]

    # The timeout job gets a 4096^2 image: sep alone needs more than a second on it, whereas on
    # the small one a runner forked from the warm runner may finish within the second.
    slow = path.with_name("slow.fits")
    make_image(str(slow), size=4096, n_sources=8, seed=9)
    with open(slow, "rb") as fh:
        slow_id = client.post(stack.url + "/function/upload", files={"file": ("slow.fits", fh)}, timeout=120).json()["uuid"]
    jobs = [submit() for _ in range(3)] + [submit(timeout=1, data_inputs=slow_id)]
    cancelled = submit()
    client.post(f"{stack.url}/function/cancel/{cancelled}", timeout=30)
    jobs.append(cancelled)

    async def poison():  # a submitted event the dispatcher refuses (400): dead-lettered at once
        nc = await nats.connect(stack.nats_url)
        await nc.jetstream().publish("caesar.jobs.submitted", json.dumps({
            "specversion": "1.0", "id": "poison-1", "source": "/test", "type": "org.caesar.jobs.submitted",
            "subject": "x", "time": "2025-01-01T00:00:00Z", "data": {"no": "job id"}}).encode(),
            headers={"Nats-Msg-Id": "poison-1"})
        await nc.close()

    asyncio.run(poison())
    for job_id in jobs:
        wait_for(lambda j=job_id: client.get(f"{stack.url}/function/status/{j}", timeout=30).json()["state"]
                 in TERMINAL, timeout=180, interval=0.2, message=f"job {job_id}")
    store = SQLiteStore(stack.home / "caesar.db")
    ended = [store.get("jobs", job_id) for job_id in jobs]
    # The notifier counts each job once the finished event reaches it.
    wait_for(lambda: all((store.get("jobs", j) or {}).get("counted") for j in jobs), timeout=60,
             message="every end counted")
    return store, ended


def test_only_admin_or_metrics_tokens_read_the_metrics(stack):
    url = stack.url + "/function/monitor/metrics"
    assert requests.get(url, timeout=30).status_code == 401
    assert stack.client("eve").get(url, timeout=30).status_code == 403
    assert stack.client("root", ("admin",)).get(url, timeout=30).status_code == 200
    assert stack.client("prom", ("metrics",)).post(url, timeout=30).status_code == 405


def test_end_of_job_counters_agree_with_the_store(stack, mix):
    store, ended = mix
    samples = scrape(stack)
    states = Counter((j["app"], j["state"], j.get("error_class") or "none") for j in ended)
    assert states[("sep", "SUCCESS", "none")] == 3 and states[("sep", "ABORTED", "none")] == 1
    for (app, state, error_class), count in states.items():
        assert value(samples, "caesar_jobs_finished_total", app=app, state=state, error_class=error_class) == count
    assert value(samples, "caesar_jobs_finished_total") == len(ended)

    ran = [j for j in ended if j.get("started") is not None and j.get("elapsed") is not None]
    for state in {j["state"] for j in ran}:
        mine = [j for j in ran if j["state"] == state]
        assert value(samples, "caesar_job_duration_seconds_count", app="sep", state=state) == len(mine)
        assert value(samples, "caesar_job_duration_seconds_sum", app="sep", state=state) == pytest.approx(
            sum(j["elapsed"] for j in mine), rel=1e-6)
        assert value(samples, "caesar_job_duration_seconds_bucket", app="sep", state=state, le="+Inf") == len(mine)
        for bound in ("1.0", "10.0", "60.0"):
            assert value(samples, "caesar_job_duration_seconds_bucket", app="sep", state=state, le=bound) == sum(
                1 for j in mine if j["elapsed"] <= float(bound))
    latencies = [j["started"] - j["created"] for j in ended if j.get("started") is not None]
    assert value(samples, "caesar_dispatch_latency_seconds_count") == len(latencies)
    assert value(samples, "caesar_dispatch_latency_seconds_sum") == pytest.approx(sum(latencies), rel=1e-6)

    assert value(samples, "caesar_nats_up") == 1
    assert value(samples, "caesar_events_dead_letters_total", subject="caesar.jobs.submitted") >= 1
    def caught_up() -> dict | None:
        now = scrape(stack)
        return now if value(now, "caesar_connector_pending") == 0 else None

    lag = wait_for(caught_up, timeout=60, interval=0.5, message="the connector to catch up")
    consumers = {labels["consumer"] for labels, _ in lag["caesar_connector_pending"]}
    assert {"dispatcher--caesar_jobs_submitted", "notifier--caesar_jobs_finished"} <= consumers
    assert value(samples, "caesar_intake_open") == 1


def test_store_gauges_and_capacity_agree_with_the_store(stack, mix):
    store, _ = mix
    samples = scrape(stack)
    for state in ("PENDING", "STARTED", "RUNNING", "SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED"):
        assert value(samples, "caesar_jobs", state=state, app="sep") == store.count("jobs", {"state": state,
                                                                                               "app": "sep"})
    assert value(samples, "caesar_queue_depth", app="sep") == store.count("jobs", {"state": "PENDING", "app": "sep"})
    files = store.find("files", {"status": {"in": ["ready", "pending"]}})
    assert value(samples, "caesar_files") == len(files)
    assert value(samples, "caesar_storage_bytes") == sum(f.get("size") or 0 for f in files)
    assert value(samples, "caesar_capacity_needed_cores", app="sep") == 0  # nothing waits, nothing runs
