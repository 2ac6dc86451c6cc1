"""The local backend's side of the warm runner (runner/zygote.py): start it, ask it to fork a
job's runner, notice when it is gone.

One zygote per runner module and import path in a process, shared by its LocalBackends, started
on first use (or by warm()) and used only once it has said it is ready: a launch never waits for
the zygote's imports, it starts a plain process meanwhile. The zygote lives as long as the
socket to it: when this process exits, however it dies, the zygote sees the socket close and
exits too (runners it forked live on in their own sessions, as plain ones do).

Any trouble (the zygote died, refused, or did not answer in time) makes spawn() raise
WarmRunnerError after the zygote is killed, so it cannot fork the job late; the backend then
looks for a runner already started for the job (adoption by work folder) before starting a
plain one, so a job never runs twice. A new zygote is started on a later launch, no sooner than
RESTART_AFTER seconds after the last one failed.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..runner.contract import THREAD_ENV

log = logging.getLogger("caesar.backends.warm")

ANSWER_TIMEOUT = 10.0  # seconds for the zygote to fork and answer (a fork takes milliseconds)
RESTART_AFTER = 30.0
_PACKAGE = __name__.rsplit(".backends.", 1)[0]
ZYGOTE_MODULE = f"{_PACKAGE}.runner.zygote"


class WarmRunnerError(Exception):
    """The zygote cannot start this runner (it is stopped now); start a plain process."""


class WarmRunner:
    def __init__(self, module: str, env: dict[str, str]) -> None:
        self.module = module
        self.env = env  # the zygote's own environment (never a job's)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._ready = False
        self._home: tempfile.TemporaryDirectory[str] | None = None
        self._failed_at = float("-inf")
        self.forks = 0  # runners forked so far (what the tests and the logs look at)

    def start(self) -> None:
        """Start the zygote if none is running (and the last failure is long enough ago)."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                return
            self._fail_locked(f"it exited with code {self._proc.returncode}")
        if time.monotonic() - self._failed_at < RESTART_AFTER:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # A private HOME: matplotlib's font list and config are built there once per zygote.
        self._home = tempfile.TemporaryDirectory(prefix="caesar-warm-runner-")
        env = {**self.env, "HOME": self._home.name, "TMPDIR": self._home.name}
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", ZYGOTE_MODULE, str(theirs.fileno()), self.module],
                env=env, cwd=self._home.name, stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                close_fds=True)
        except OSError as exc:
            log.warning("the warm runner could not start (%s); runners start as plain processes", exc)
            ours.close()
            self._failed_at = time.monotonic()
            return
        finally:
            theirs.close()
        self._sock = ours
        log.info("warm runner %d starting for %s", self._proc.pid, self.module)

    def ready(self) -> bool:
        """True once the zygote has said it is ready (never blocks)."""
        with self._lock:
            return self._ready_locked()

    def _ready_locked(self) -> bool:
        if self._sock is None or self._proc is None or self._proc.poll() is not None:
            return False
        if not self._ready:
            try:
                readable, _, _ = select.select([self._sock], [], [], 0)
                if not readable:
                    return False
                message = self._receive_locked()
            except (OSError, EOFError, ValueError) as exc:
                self._fail_locked(f"{type(exc).__name__}: {exc}")
                return False
            self._ready = bool(message.get("ready"))
            if self._ready:
                log.info("warm runner %d ready", self._proc.pid)
        return self._ready

    def spawn(self, env: dict[str, str], cwd: Path, out: Path) -> int | None:
        """Fork a runner with exactly `env`, in `cwd`, its output appended to `out`; its pid, or
        None when no zygote is ready (nothing was asked: start a plain process)."""
        from ..runner.zygote import send

        with self._lock:
            self._start_locked()
            if not self._ready_locked():
                return None
            assert self._sock is not None
            try:
                send(self._sock, {"env": env, "cwd": str(cwd), "out": str(out)})
                answer = self._receive_locked()
            except (OSError, EOFError, ValueError) as exc:
                self._fail_locked(f"{type(exc).__name__}: {exc}")
                raise WarmRunnerError(str(exc)) from exc
        pid = answer.get("pid")
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
            self.forks += 1
            return pid
        raise WarmRunnerError(str(answer.get("error") or f"unexpected answer {answer!r}"))

    def _receive_locked(self) -> dict[str, Any]:
        from ..runner.zygote import receive

        assert self._sock is not None
        self._sock.settimeout(ANSWER_TIMEOUT)
        try:
            return receive(self._sock)
        except TimeoutError as exc:
            raise EOFError(f"no answer from the warm runner in {ANSWER_TIMEOUT:g} s") from exc

    def _fail_locked(self, why: str) -> None:
        log.warning("warm runner failed (%s): stopped; runners start as plain processes meanwhile", why)
        self._failed_at = time.monotonic()
        self._discard_locked()

    def _discard_locked(self) -> None:
        """Stop the zygote for good (SIGKILL, then reaped): after this it forks nothing more."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        if self._sock is not None:
            self._sock.close()
        if self._home is not None:
            self._home.cleanup()
        self._proc, self._sock, self._home, self._ready = None, None, None, False

    def stop(self) -> None:
        with self._lock:
            self._discard_locked()
            self._failed_at = float("-inf")
            self.forks = 0

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None


_registry_lock = threading.Lock()
_registry: dict[tuple[str, str], WarmRunner] = {}


def warm_runner(module: str, pythonpath: str, pass_env: dict[str, str]) -> WarmRunner:
    """The process's zygote for `module` with this import path (created, not started)."""
    key = (module, pythonpath)
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            env = {**pass_env, **THREAD_ENV, "PYTHONPATH": pythonpath}
            env.setdefault("PATH", os.defpath)
            found = _registry[key] = WarmRunner(module, env)
        return found
