#!/usr/bin/env python3
"""Job benchmark (issue 11): submit -> SUCCESS through the real local stack against the same
finder run directly (its commands and catalogue reading, no service), per local app, side by
side, with the peak RSS of each process tree.

    .venv/bin/python bench/job_bench.py                        # sep on 4096^2, aegean, pybdsf on 2048^2
    .venv/bin/python bench/job_bench.py --apps sep --repeat 5

The image is synthetic (tests/synth.py: Gaussian sources on noise, a real WCS and beam), uploaded
inline once; each repeat submits a job and waits for a final state as the client does, through
the status long poll (GET /function/status/<id>?wait=30&state=<known>: answered when the state
changes; it used to poll every 20 ms, which on 2 cores took CPU from the finder). Prints
min/median/max of both, the ratio of medians and the trees' peak RSS; exits 1 when a ratio is above its target (sep 1.3, aegean and pybdsf 1.1).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import Stack, mib, proc_status_bytes, report  # noqa: E402

TARGETS = {"sep": 1.3, "aegean": 1.1, "pybdsf": 1.1}
IMAGES = {"sep": (4096, 1000), "aegean": (2048, 300), "pybdsf": (2048, 300)}  # side, sources


class TreeSampler:
    """Peak of the summed RSS of a process and its descendants, sampled every 20 ms."""

    def __init__(self, find_root: Any) -> None:
        self.find_root, self.peak, self._stop = find_root, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            root = self.find_root()
            if root:
                self.peak = max(self.peak, sum(proc_status_bytes(pid, "VmRSS") for pid in _tree(root)))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            out.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    return out


def _tree(root: int) -> list[int]:
    kids, todo, found = _children(), [root], []
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(kids.get(pid, []))
    return found


def runner_of(stack: Stack, job_id: str) -> int | None:
    """The runner's pid from the local backend's launch.json (a runner forked from the warm
    runner shows the zygote's command line and start-up environment in /proc, not the job's)."""
    try:
        pid = json.loads((stack.home / "jobs" / job_id / "launch.json").read_text()).get("pid")
    except (OSError, ValueError):
        return None
    return pid if isinstance(pid, int) and Path(f"/proc/{pid}").exists() else None


def direct(app: str, image: Path, work: Path) -> tuple[float, int, int]:
    """(seconds, peak tree RSS, sources) of the finder's own commands plus reading its catalogue."""
    from caesar_faas.apps.registry import get_app
    from caesar_faas.apps.validation import validate_options
    from caesar_faas.runner.contract import THREAD_ENV
    from caesar_faas.runner.finders import load_adapter

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = get_app(app)
    options = validate_options(spec, {})
    adapter = load_adapter(spec.local_entry)
    env = dict(os.environ, **THREAD_ENV, HOME=str(work), TMPDIR=str(work))
    peak = 0
    begun = time.perf_counter()
    for argv in adapter.argv(str(image), options, str(work)):
        proc = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sampler = TreeSampler(lambda p=proc: p.pid if p.poll() is None else None)
        if proc.wait() != 0:
            raise SystemExit(f"{app}: {argv[0]} exited {proc.returncode}")
        peak = max(peak, sampler.stop())
    rows = adapter.read_catalog(str(work), str(image), options)
    seconds = time.perf_counter() - begun
    peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 if not peak else peak)
    return seconds, peak, len(rows)


def through_service(stack: Stack, app: str, file_id: str) -> tuple[float, int, int]:
    begun = time.perf_counter()
    answer = stack.session.post(f"{stack.url}/function/submit", json={"app": app, "job_inputs": {},
                                                                      "data_inputs": file_id}, timeout=60)
    if answer.status_code != 202:
        raise SystemExit(f"submit {app}: HTTP {answer.status_code} {answer.text[:300]}\n{stack.log_tail()}")
    job_id = answer.json()["job_id"]
    sampler = TreeSampler(lambda: runner_of(stack, job_id))
    known = "PENDING"
    while True:  # as the client waits (caesar wait): the long poll, answered when the state changes
        job = stack.session.get(f"{stack.url}/function/status/{job_id}", params={"wait": 30, "state": known},
                                timeout=60).json()
        known = job.get("state", known)
        if known in ("SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED"):
            break
    seconds = time.perf_counter() - begun
    peak = sampler.stop()
    if job["state"] != "SUCCESS":
        raise SystemExit(f"{app} job {job_id}: {job['state']}: {job.get('status')}")
    return seconds, peak, int(job.get("sources") or job.get("nsources") or -1)


def main() -> int:
    parser = argparse.ArgumentParser(description="submit -> SUCCESS vs the finder run directly")
    parser.add_argument("--apps", default="sep,aegean,pybdsf")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image-size", type=int, help="one image side for every app (a quick check; "
                        "the targets are for the default sizes)")
    parser.add_argument("--no-warm-runner", action="store_true",
                        help="start every runner as a plain process (CAESAR_LOCAL_WARM_RUNNER=0), to compare")
    args = parser.parse_args()
    from tests.synth import make_image

    work = Path(tempfile.mkdtemp(prefix="caesar-jobs-"))
    stack = None
    missed: list[str] = []
    try:
        stack = Stack(work / "home", {"CAESAR_LOCAL_MAX_JOBS": "1",
                                      "CAESAR_LOCAL_WARM_RUNNER": "0" if args.no_warm_runner else "1"})
        images: dict[tuple[int, int], tuple[Path, str]] = {}
        print(f"{'app':8} {'image':>11}   {'direct min/median/max s':>24}   {'service min/median/max s':>25}   "
              f"{'ratio':>6}   peak RSS direct / service tree")
        for app in args.apps.split(","):
            size, sources = IMAGES[app]
            if args.image_size:
                size, sources = args.image_size, max(5, sources * args.image_size ** 2 // size ** 2)
            if (size, sources) not in images:
                path = work / f"img{size}.fits"
                make_image(str(path), size=size, n_sources=sources, seed=3, min_sep_beams=3.0, margin_beams=4.0)
                with open(path, "rb") as fh:
                    up = stack.session.post(f"{stack.url}/function/upload", files={"file": (path.name, fh)}, timeout=600)
                if up.status_code != 201:
                    raise SystemExit(f"upload: HTTP {up.status_code} {up.text[:300]}\n{stack.log_tail()}")
                images[(size, sources)] = (path, up.json()["uuid"])
            path, file_id = images[(size, sources)]
            direct_s, service_s, direct_peak, service_peak = [], [], 0, 0
            direct(app, path, work / "direct")  # warm the page cache and the finder's imports
            through_service(stack, app, file_id)  # and the service: its first job loads the dispatcher
            for _ in range(args.repeat):
                seconds, peak, _ = direct(app, path, work / "direct")
                direct_s.append(seconds)
                direct_peak = max(direct_peak, peak)
                seconds, peak, _ = through_service(stack, app, file_id)
                service_s.append(seconds)
                service_peak = max(service_peak, peak)
            ratio = statistics.median(service_s) / statistics.median(direct_s)
            ok = ratio <= TARGETS[app]
            print(f"{app:8} {f'{size}^2':>11}   {fmt(direct_s):>24}   {fmt(service_s):>25}   {ratio:6.2f}   "
                  f"{mib(direct_peak)} / {mib(service_peak)}   <= {TARGETS[app]} {'ok' if ok else 'MISSED'}", flush=True)
            if not ok:
                missed.append(f"{app}: submit->SUCCESS {ratio:.2f}x the direct run (target {TARGETS[app]})")
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    return report(missed)


def fmt(values: list[float]) -> str:
    return f"{min(values):7.2f} {statistics.median(values):7.2f} {max(values):7.2f}"


if __name__ == "__main__":
    sys.exit(main())
