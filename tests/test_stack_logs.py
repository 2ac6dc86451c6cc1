"""Issue 17 §1 on the running local stack: one access line per request, and one job followed
by `grep <job_id>` over every log in order (submit, dispatch, launch, runner start, products,
finish), all carrying the request id the client sent; the job.log users download is plain text
without server paths."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from caesar_faas.jobs.states import TERMINAL
from tests.fixtures.stack import ROOT
from tests.helpers import wait_for
from tests.synth import make_image


def log_lines(home: Path) -> list[dict]:
    rows = []
    for path in sorted((home / "logs").glob("*.log")):
        if path.name != "nats.log":
            rows += [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(rows, key=lambda r: r["ts"])


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("logs-images") / "small.fits"
    make_image(str(path), size=256, n_sources=8, seed=5)
    return path


def test_every_request_gets_one_access_line(stack, image):
    client = stack.client("lou")
    with open(image, "rb") as fh:
        file_id = client.post(stack.url + "/function/upload", files={"file": ("a.fits", fh)},
                              headers={"X-Request-Id": "lou-upload"}, timeout=60).json()["uuid"]
    sent = {"lou-upload": ("POST", "/function/upload", 201)}
    for i in range(30):
        rid = f"lou-{i:03d}"
        path, query = [("/function/files", "?limit=5"), (f"/function/files/{file_id}", ""),
                       ("/function/describe", ""), ("/function/jobs", "?state=bogus")][i % 4]
        resp = client.get(stack.url + path + query, headers={"X-Request-Id": rid}, timeout=30)
        assert resp.headers["X-Request-Id"] == rid
        sent[rid] = ("GET", path, resp.status_code)
    resp = client.get(stack.url + "/function/files", headers={"X-Request-Id": "bad id with spaces"}, timeout=30)
    made = resp.headers["X-Request-Id"]
    assert made != "bad id with spaces" and len(made) == 32

    def access() -> dict[str, dict] | None:
        rows = [r for r in log_lines(stack.home) if r["logger"] == "caesar.access"]
        got = {r["request_id"]: r for r in rows if r["request_id"] in sent or r["request_id"] == made}
        return got if len(got) == len(sent) + 1 else None

    found = wait_for(access, timeout=30, message="the access lines")
    counted = [r for r in log_lines(stack.home) if r["logger"] == "caesar.access" and r["request_id"] in sent]
    assert len(counted) == len(sent)  # exactly one each
    for rid, (method, path, status) in sent.items():
        row = found[rid]
        assert (row["method"], row["path"], row["status"], row["user"]) == (method, path, status, "lou")
        assert row["duration_ms"] >= 0 and row["bytes"] > 0 and "?" not in row["path"]
    assert found["lou-upload"]["function"] == "upload" and found["lou-000"]["function"] == "files"


def test_one_job_is_traced_through_every_log(stack, image):
    client = stack.client("tess")
    with open(image, "rb") as fh:
        file_id = client.post(stack.url + "/function/upload", files={"file": ("b.fits", fh)}, timeout=60).json()["uuid"]
    rid = "trace-tess-0001"
    resp = client.post(stack.url + "/function/submit", headers={"X-Request-Id": rid}, timeout=30,
                       json={"app": "sep", "job_inputs": {}, "data_inputs": file_id})
    assert resp.status_code == 202 and resp.headers["X-Request-Id"] == rid
    job_id = resp.json()["job_id"]

    def ended() -> dict | None:
        view = client.get(f"{stack.url}/function/status/{job_id}", timeout=30).json()
        return view if view["state"] in TERMINAL else None

    assert wait_for(ended, timeout=180, interval=0.2, message="the job")["state"] == "SUCCESS"

    def steps() -> list[tuple[str, str]] | None:
        rows = [r for r in log_lines(stack.home) if job_id in json.dumps(r)]
        marks = {
            "submit": lambda r: r["function"] == "submit" and "submitted" in r["event"],
            "launch": lambda r: r["function"] == "dispatcher" and "launched" in r["event"],
            "runner start": lambda r: r["function"] == "runner" and r["event"].startswith("runner for job"),
            "products": lambda r: r["function"] == "runner" and r["event"].startswith("uploaded catalog.csv"),
            "runner end": lambda r: r["function"] == "runner" and "finished: SUCCESS" in r["event"],
            "finish": lambda r: r["function"] == "dispatcher" and f"job {job_id} finished" in r["event"],
        }
        firsts = {}
        for row in rows:
            for name, test in marks.items():
                if name not in firsts and test(row):
                    firsts[name] = row
        return None if len(firsts) < len(marks) else [(name, firsts[name]) for name in marks]

    trace = wait_for(steps, timeout=30, message="every step in the logs")
    names = [name for name, _ in trace]
    by_time = [name for name, _ in sorted(trace, key=lambda step: step[1]["ts"])]
    # The dispatcher logs "launched" once the launch has returned; a runner forked from the warm
    # runner may have logged its first line by then: those two steps are simultaneous.
    runner_first = [*names[:1], names[2], names[1], *names[3:]]
    assert by_time in (names, runner_first), [(name, row["ts"]) for name, row in trace]
    for name, row in trace:
        assert row["request_id"] == rid, (name, row)  # carried by events, the runner env and its events
        assert row["job_id"] == job_id, (name, row)
    # The connector's calls of the dispatcher (submitted, then each status event) carry it too.
    calls = [r for r in log_lines(stack.home) if r["logger"] == "caesar.access" and r["function"] == "dispatcher"
             and r.get("job_id") == job_id]
    assert len(calls) >= 3 and {r["request_id"] for r in calls} == {rid}
    runner_lines = [r for r in log_lines(stack.home) if r["function"] == "runner" and r.get("job_id") == job_id]
    assert runner_lines and {r["user"] for r in runner_lines} == {"tess"} and {r["app"] for r in runner_lines} == {"sep"}

    text = client.get(f"{stack.url}/function/output/{job_id}/job.log", timeout=30).text
    assert "sep" in text and "\x1b" not in text
    for server_path in (str(stack.home), str(ROOT), sys.prefix):
        assert server_path not in text, server_path
