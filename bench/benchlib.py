"""What the benches share: repeated timings with min/median/max, side-by-side ratios, peak RSS.

A machine shared by several people is noisy: every figure is measured as the median of several
repeats, and the two sides of a ratio are measured interleaved (a, b, a, b, ...) in one run, so
a slow moment hits both alike.
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Timing:
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def text(self, unit: str = "ms") -> str:
        scale = {"ms": 1e3, "s": 1.0, "us": 1e6}[unit]
        low, mid, high = min(self.samples) * scale, self.median * scale, max(self.samples) * scale
        return f"{low:9.2f} {mid:9.2f} {high:9.2f} {unit}"


def time_once(fn: Callable[[], Any]) -> float:
    begun = time.perf_counter()
    fn()
    return time.perf_counter() - begun


def side_by_side(a: Callable[[], Any], b: Callable[[], Any], repeat: int, warmup: int = 1) -> tuple[Timing, Timing]:
    """Each callable `repeat` times, interleaved, after `warmup` untimed calls of each."""
    for _ in range(warmup):
        a()
        b()
    ta: list[float] = []
    tb: list[float] = []
    gc.collect()
    for _ in range(repeat):
        ta.append(time_once(a))
        tb.append(time_once(b))
    return Timing(ta), Timing(tb)


def header(left: str, right: str, unit: str = "ms") -> str:
    cols = f"{'min':>9} {'median':>9} {'max':>9} {unit:2}"
    return f"{'':34} {left + ' ' + cols:>42}   {right + ' ' + cols:>42}   {'ratio':>7}"


def row(name: str, a: Timing, b: Timing, unit: str = "ms", target: str = "") -> str:
    ratio = b.median / a.median if a.median else float("inf")
    return f"{name:34} {a.text(unit):>42}   {b.text(unit):>42}   {ratio:7.2f}  {target}"


def peak_rss_bytes() -> int:
    """This process's peak resident set so far (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def proc_status_bytes(pid: int, field: str) -> int:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM) in bytes, 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def report(missed: list[str]) -> int:
    """Print the missed targets and the verdict; the exit status (1 when one was missed)."""
    for line in missed:
        print(f"MISSED: {line}")
    print("all targets met" if not missed else f"{len(missed)} target(s) missed")
    return 1 if missed else 0


def mib(n: float) -> str:
    return f"{n / 1024 / 1024:,.0f} MiB"


# -- the local stack, as an operator starts it ---------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
            if value:
                return value
        except (requests.RequestException, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Gateway:
    """The gateway child of the stack: its pid and peak RSS (VmHWM, resettable via clear_refs)."""

    def __init__(self, supervisor_pid: int) -> None:
        self.pid = wait_until(lambda: self._find(supervisor_pid), 30, "the gateway process")

    @staticmethod
    def _find(parent: int) -> int | None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == parent and b"caesar_faas.local.gateway" in cmd:
                return int(entry.name)
        return None

    def reset_peak(self) -> bool:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def peak_rss(self) -> int:
        return proc_status_bytes(self.pid, "VmHWM")


class Stack:
    def __init__(self, home: Path, extra_env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAESAR_")}
        env.update({"CAESAR_HOME": str(home), "CAESAR_HTTP_PORT": str(self.port),
                    "CAESAR_NATS_PORT": str(free_port()), "PYTHONUNBUFFERED": "1", **extra_env})
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "stack.log"  # what the stack says, for a bench that fails to tell why
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "caesar_faas.local"], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: requests.get(self.url + "/healthz", timeout=2).status_code == 200, 90,
                   "the local stack to be healthy")
        self.gateway = Gateway(self.proc.pid)
        from caesar_faas.tokens import mint_token

        secret = (home / "jwt.secret").read_text().strip()
        self.token = mint_token(secret, "bench", ("user",), 6 * 3600)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
