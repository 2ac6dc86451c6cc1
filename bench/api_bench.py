#!/usr/bin/env python3
"""API benchmark (issue 11): requests per second of the gateway's hot paths against a bare
hello-world Flask app on the same server (waitress, 16 threads), side by side, with 1 and 16
client connections. Starts the real local stack (`python -m caesar_faas.local`) on free ports.

    .venv/bin/python bench/api_bench.py [--seconds 2] [--repeat 3]

Paths: GET /function/status/<id>, GET /function/jobs?limit=50 (of 200 jobs), GET /healthz
(pings NATS, storage and the store). The load comes from 2 client processes (threads with
keep-alive connections). Prints req/s min/median/max per side and the ratio of medians; exits
1 when status is below 0.5x the hello-world at either connection count.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import Stack, free_port, report, wait_until  # noqa: E402

TARGET = 0.5
CLIENT_PROCESSES = 2
HELLO = """
import sys
from flask import Flask
from waitress import serve
app = Flask("hello")

@app.route("/")
def hello():
    return {"hello": "world"}

serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=16, ident="hello", recv_bytes=1024 * 1024)
"""


def _client(port: int, path: str, headers: dict[str, str], threads: int, seconds: float, out: multiprocessing.Queue[int]) -> None:
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def loop(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"GET {path}: HTTP {answer.status}")
            counts[i] += 1
        conn.close()

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(sum(counts))


def rate(port: int, path: str, headers: dict[str, str], connections: int, seconds: float) -> float:
    """Requests per second over `seconds` with `connections` keep-alive connections."""
    processes = min(CLIENT_PROCESSES, connections)
    out: multiprocessing.Queue[int] = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_client, args=(port, path, headers, connections // processes, seconds, out))
             for _ in range(processes)]
    begun = time.monotonic()
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join()
    return total / (time.monotonic() - begun)


def seed(home: Path, owner: str, n: int) -> str:
    from caesar_faas.store.sqlite import SQLiteStore

    store = SQLiteStore(home / "caesar.db")
    jobs = [{"id": f"{i:08x}-0000-4000-8000-000000000000", "owner": owner, "created": 1.7e9 + i, "state": "SUCCESS",
             "app": "sep", "active": False, "progress": 100, "elapsed": 3.0, "timeout": 3600, "expires": 3e9,
             "status": "done", "options": {}} for i in range(n)]
    store.insert_many("jobs", jobs)
    store.close()
    return jobs[n // 2]["id"]


def main() -> int:
    parser = argparse.ArgumentParser(description="gateway req/s vs a bare hello-world on the same server")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measurement")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="caesar-api-"))
    hello_port = free_port()
    hello = subprocess.Popen([sys.executable, "-c", HELLO, str(hello_port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    stack = None
    missed: list[str] = []
    try:
        stack = Stack(work / "home", {})
        job_id = seed(stack.home, "bench", 200)
        auth = {"Authorization": f"Bearer {stack.token}"}
        wait_until(lambda: http_ok(hello_port, "/"), 30, "the hello-world server")
        paths = {"status": f"/function/status/{job_id}", "jobs list": "/function/jobs?limit=50", "healthz": "/healthz"}
        print(f"req/s, {args.repeat} runs of {args.seconds:g} s each, interleaved with the hello-world; "
              f"ratio = median / hello median")
        print(f"{'path':12} {'conns':>5}   {'hello min/median/max':>26}   {'path min/median/max':>26}   {'ratio':>6}")
        for connections in (1, 16):
            for name, path in paths.items():
                base, mine = [], []
                for _ in range(args.repeat):
                    base.append(rate(hello_port, "/", auth, connections, args.seconds))
                    mine.append(rate(stack.port, path, auth, connections, args.seconds))
                ratio = statistics.median(mine) / statistics.median(base)
                verdict = ""
                if name == "status":
                    verdict = f">= {TARGET} {'ok' if ratio >= TARGET else 'MISSED'}"
                    if ratio < TARGET:
                        missed.append(f"status with {connections} connection(s): {ratio:.2f}x the hello-world")
                print(f"{name:12} {connections:5}   {fmt(base):>26}   {fmt(mine):>26}   {ratio:6.2f}  {verdict}",
                      flush=True)
    finally:
        hello.terminate()
        hello.wait(timeout=30)
        if stack is not None:
            stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    return report(missed)


def fmt(values: list[float]) -> str:
    return f"{min(values):7.0f} {statistics.median(values):7.0f} {max(values):7.0f}"


def http_ok(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
