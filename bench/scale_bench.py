#!/usr/bin/env python3
"""Scale benchmark (issue 11): the same requests against a store of 1,000 and one of 100,000
finished jobs and files, side by side in one run. An operator's check of a release:

    .venv/bin/python bench/scale_bench.py                 # 1k vs 100k, 15 repeats
    .venv/bin/python bench/scale_bench.py --large 20000 --repeat 5

Measures, through the gateway's real Flask app and function handlers (in process, no network):
GET /function/status/<id>, the first and a deep page of /function/jobs and /function/files,
GET /function/accounting (the caller's), ?all=1 and /apps (admin), one monitor run
(maintenance.run: jobs, uploads, outbox, deletions, accounting), dispatch of a new job
created -> STARTED (fill_slots with a backend that accepts at once); then the peak RSS of a
fresh process serving accounting ?all=1 and of one doing a monitor run on the large store.
Seeding goes through the store API in bulk (insert_many), so the whole run takes minutes.
Prints min/median/max per side and the ratio of medians; exits 1 when a target is missed:
ratio <= 1.2 for status, pages, accounting and the monitor run; peak RSS < 256 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import header, mib, report, row, side_by_side  # noqa: E402

RATIO_TARGET = 1.2
RSS_TARGET = 256 * 1024 * 1024
T0 = 1_700_000_000.0
APPS = ["sep", "aegean", "pybdsf"]
MAIN_USER = "alice"
BATCH = 5000


def jid(i: int, kind: int = 0) -> str:
    """A uuid-shaped id (the functions answer 404 at once to anything else), ordered by i."""
    return f"{i:08x}-{kind:04x}-4000-8000-000000000000"


def owner_of(i: int) -> str:
    return MAIN_USER if i % 10 else f"user{i % 37}"  # 90% one user, the rest spread over 37


def seed(home: Path, n: int) -> dict[str, Any]:
    """n finished jobs and n ready files, straight through the store API; returns handles."""
    from caesar_faas.store.sqlite import SQLiteStore

    rnd = random.Random(n)
    store = SQLiteStore(home / "caesar.db")
    for start in range(0, n, BATCH):
        jobs, files = [], []
        for i in range(start, min(n, start + BATCH)):
            created = T0 + i
            elapsed = round(rnd.lognormvariate(3.0, 1.0), 3)
            state = "SUCCESS" if i % 20 else rnd.choice(["FAILURE", "ABORTED", "TIMED-OUT"])
            jobs.append({"id": jid(i), "owner": owner_of(i), "created": created, "state": state,
                         "app": APPS[i % 3], "tag": f"t{i % 50}", "active": False, "progress": 100,
                         "started": created + 1, "finished": created + 1 + elapsed, "elapsed": elapsed,
                         "cpu_seconds": round(elapsed * 0.8, 3), "expires": T0 + 10**9, "timeout": 3600,
                         "status": "done", "options": {"threshold": 5}, "file_id": jid(i, 1)})
            files.append({"id": jid(i, 1), "owner": owner_of(i), "created": created, "status": "ready",
                          "size": rnd.randint(10**5, 10**8), "filename_orig": f"img{i}.fits", "format": "fits",
                          "sha256": "0" * 64, "shape": [512, 512], "key": f"files/{owner_of(i)}/{jid(i, 1)}",
                          "tag": f"t{i % 50}", "announced": True})
        store.insert_many("jobs", jobs)
        store.insert_many("files", files)
    store.close()
    deep = next(i for i in range(n // 10, n) if owner_of(i) == MAIN_USER)  # 90% of the way down the list
    middle = next(i for i in range(n // 2, n) if owner_of(i) == MAIN_USER)
    return {"status_id": jid(middle), "deep_created": T0 + deep, "deep_job": jid(deep), "deep_file": jid(deep, 1)}


class Side:
    """One store and the environment that selects it (settings and services are cached per
    environment, so switching sides keeps both warm)."""

    def __init__(self, name: str, home: Path, secret: str, handles: dict[str, Any]) -> None:
        self.name, self.home, self.handles = name, home, handles
        self.env = {"CAESAR_HOME": str(home), "CAESAR_AUTH": "jwt", "CAESAR_JWT_SECRET": secret,
                    "CAESAR_DB_URL": f"sqlite:///{home / 'caesar.db'}", "CAESAR_STORAGE_URL": f"file://{home / 'objects'}",
                    "CAESAR_NATS_URL": "nats://127.0.0.1:9", "CAESAR_JOB_BACKEND": "local", "CAESAR_LOCAL_MAX_JOBS": "2"}

    def use(self) -> None:
        os.environ.update(self.env)


def measurements(client: Any, side: Side, user: dict[str, str], admin: dict[str, str]) -> dict[str, Any]:
    from caesar_faas import maintenance
    from caesar_faas.runtime import services
    from caesar_faas.store import cursors

    h = side.handles
    job_cursor = cursors.encode(h["deep_created"], h["deep_job"])
    file_cursor = cursors.encode(h["deep_created"], h["deep_file"])

    def get(path: str, headers: dict[str, str]) -> Any:
        def call() -> None:
            side.use()
            answer = client.get(path, headers=headers)
            assert answer.status_code == 200, (path, answer.status_code, answer.get_data()[:300])
        return call

    def monitor() -> None:
        side.use()
        summary = maintenance.run(services())
        assert not any(isinstance(v, str) and v.startswith("failed") for v in summary.values()), summary

    return {
        "GET status/<id>": get(f"/function/status/{h['status_id']}", user),
        "GET jobs (first page)": get("/function/jobs?limit=50", user),
        "GET jobs (page at 90% depth)": get(f"/function/jobs?limit=50&cursor={job_cursor}", user),
        "GET jobs ?state=FAILURE deep": get(f"/function/jobs?limit=50&state=FAILURE&cursor={job_cursor}", user),
        "GET files (first page)": get("/function/files?limit=50", user),
        "GET files (page at 90% depth)": get(f"/function/files?limit=50&cursor={file_cursor}", user),
        "GET accounting (own)": get("/function/accounting", user),
        "GET accounting ?all=1": get("/function/accounting?all=1", admin),
        "GET accounting/apps": get("/function/accounting/apps", admin),
        "monitor run": monitor,
        "dispatch created->STARTED": dispatcher(side),
    }


def dispatcher(side: Side) -> Any:
    """Insert a PENDING job and dispatch it (fill_slots, admission lock, compare-and-set) with a
    backend that accepts at once; the job is finished again outside the timing by the next call."""
    from caesar_faas.backends.base import Backend, PollResult
    from caesar_faas.jobs.dispatch import on_submitted
    from caesar_faas.runtime import services

    class AcceptAll(Backend):
        name = "bench"

        def launch(self, job: dict[str, Any]) -> dict[str, Any]:
            return {"bench": job["id"]}

        def cancel(self, job: dict[str, Any]) -> None:
            pass

        def poll(self, job: dict[str, Any]) -> PollResult:
            return PollResult("RUNNING")

        def capacity(self) -> int | None:
            return 2

    counter = iter(range(10**9))
    last: list[str] = []

    def call() -> None:
        side.use()
        svc = services()
        store = svc.store
        for job_id in last:  # free the slot the previous call took
            store.update("jobs", job_id, {"state": "SUCCESS", "active": False, "finished": T0, "elapsed": 1.0})
        last.clear()
        job_id = jid(next(counter), 2)
        store.insert("jobs", {"id": job_id, "owner": MAIN_USER, "created": T0 + 10**8, "state": "PENDING",
                              "app": "sep", "active": False, "timeout": 3600, "expires": T0 + 10**9})
        result = on_submitted(store, AcceptAll(svc.settings), None, svc.settings, job_id)
        assert result["action"] == "launched", result
        last.append(job_id)

    return call


def rss_child(home: str, what: str) -> None:
    """In a fresh process: the peak RSS of one accounting ?all=1 or one monitor run."""
    from benchlib import peak_rss_bytes

    from caesar_faas import maintenance
    from caesar_faas.auth import ADMIN_ROLE
    from caesar_faas.local.gateway import create_app
    from caesar_faas.runtime import services
    from caesar_faas.tokens import mint_token

    client = create_app().test_client()
    services().store.ping()
    admin = {"Authorization": f"Bearer {mint_token(os.environ['CAESAR_JWT_SECRET'], 'root', [ADMIN_ROLE])}"}
    client.get("/function/accounting/apps", headers=admin)  # import the handler and open the store
    before = peak_rss_bytes()
    if what == "accounting":
        assert client.get("/function/accounting?all=1", headers=admin).status_code == 200
    else:
        maintenance.run(services())
    print(json.dumps({"before": before, "peak": peak_rss_bytes()}))


def main() -> int:
    parser = argparse.ArgumentParser(description="1k vs 100k jobs and files, side by side")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dir", help="work folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--rss-child", nargs=2, metavar=("HOME", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0

    import time

    work = Path(args.dir or tempfile.mkdtemp(prefix="caesar-scale-"))
    secret = secrets.token_urlsafe(32)
    missed: list[str] = []
    try:
        sides = []
        for name, n in (("small", args.small), ("large", args.large)):
            home = work / name
            home.mkdir(parents=True, exist_ok=True)
            begun = time.monotonic()
            handles = seed(home, n)
            print(f"seeded {n:,} jobs and {n:,} files in {time.monotonic() - begun:.1f} s ({name})", flush=True)
            sides.append(Side(f"{n:,}", home, secret, handles))

        from caesar_faas.auth import ADMIN_ROLE
        from caesar_faas.local.gateway import create_app
        from caesar_faas.tokens import mint_token

        sides[0].use()
        client = create_app().test_client()
        user = {"Authorization": f"Bearer {mint_token(secret, MAIN_USER)}"}
        admin = {"Authorization": f"Bearer {mint_token(secret, 'root', [ADMIN_ROLE])}"}
        small, large = (measurements(client, s, user, admin) for s in sides)
        print(f"\n{args.repeat} repeats each, interleaved; ratio = median {sides[1].name} / median {sides[0].name}")
        print(header(f"{sides[0].name} jobs+files", f"{sides[1].name} jobs+files"))
        for name in small:
            a, b = side_by_side(small[name], large[name], args.repeat)
            ratio = b.median / a.median
            checked = not name.startswith("dispatch")
            verdict = ("ok" if ratio <= RATIO_TARGET else "MISSED") if checked else "(no target)"
            print(row(name, a, b, target=f"<= {RATIO_TARGET} {verdict}" if checked else verdict), flush=True)
            if checked and ratio > RATIO_TARGET:
                missed.append(f"{name}: ratio {ratio:.2f} > {RATIO_TARGET}")

        print(f"\npeak RSS of a fresh process on the {sides[1].name} store (target < {mib(RSS_TARGET)}):")
        for what in ("accounting", "monitor"):
            env = {**os.environ, **sides[1].env}
            out = subprocess.run([sys.executable, __file__, "--rss-child", str(sides[1].home), what], env=env,
                                 capture_output=True, text=True, check=True, timeout=600)
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            grew = figures["peak"] - figures["before"]
            ok = figures["peak"] < RSS_TARGET
            print(f"  {what:10}: peak {mib(figures['peak'])} (+{mib(grew)} over the process after start-up) "
                  f"{'ok' if ok else 'MISSED'}")
            if not ok:
                missed.append(f"{what} peak RSS {mib(figures['peak'])}")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    return report(missed)


if __name__ == "__main__":
    sys.exit(main())
