"""The local job backend: one runner subprocess per job, in its own session and process group.

Everything the backend knows about a job lives in the job's work folder <home>/jobs/<job id>:
  launch.lock    flock held while launching, polling or cancelling (serialises them, also
                 between processes; the kernel drops it when a holder dies, so it never goes stale)
  launch.intent  written just before the process is started (so a crash between the start and
                 launch.json is recognised and the orphan runner adopted instead of started twice)
  launch.json    {pid, pgid, start_ticks, workdir}: the process; start_ticks (/proc/<pid>/stat
                 field 22) tells our process from a later one that got the same pid
  result.json    written by the runner before it exits (runner/contract.py)
  runner.out     the runner's stdout and stderr
So a restarted service (a new LocalBackend) still polls and cancels runners started before.

Why a flock rather than an O_EXCL marker file: a marker created before the start outlives a
crash and would then block the job for ever (or need a guess about its age); a flock vanishes
with its holder, and launch.intent + the adoption by working folder cover the one gap left.
Runners live in their own session, so they survive a crash or kill -9 of the service that
started them (the job then runs exactly once, and its events still arrive).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..apps.registry import get_app
from ..config import Settings
from ..ids import is_id
from ..runner.contract import RESULT_FILE, runner_env
from ..store.base import Record
from .base import Backend, LaunchError, PollResult
from .warm import WarmRunner, WarmRunnerError, warm_runner

log = logging.getLogger("caesar.backends.local")

RUNNER_MODULE_ENV = "CAESAR_RUNNER_MODULE"  # tests point it at a small runner that follows the contract
LOCK_FILE = "launch.lock"
INTENT_FILE = "launch.intent"
LAUNCH_FILE = "launch.json"
OUT_FILE = "runner.out"
TERM_WAIT = 3.0  # seconds between SIGTERM and SIGKILL
KILL_WAIT = 5.0
FINAL_STATES = ("SUCCESS", "FAILURE", "TIMED-OUT")
ADOPT_TRIES, ADOPT_INTERVAL = 5, 0.1  # looking for a runner a failed warm runner may have forked
LOST = "runner died without a final status"

# Variables passed through to the runner besides its contract: tools on PATH, locale, and the
# storage client's own settings (s3:// credentials). Nothing else of this process leaks in.
PASS_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
PASS_PREFIXES = ("AWS_",)

# "caesar_faas", or "function.caesar_faas" inside an OpenFaaS image: the runner is a sibling module.
_PACKAGE = __name__.rsplit(".backends.", 1)[0]
# The folder to put on PYTHONPATH so that `python -m <_PACKAGE>.runner` imports this same code.
_IMPORT_ROOT = Path(__file__).resolve().parents[len(_PACKAGE.split(".")) + 1]
_MODULE_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    state: str  # R, S, D, Z (zombie), X (dead), ...
    pgrp: int
    start_ticks: int

    @property
    def live(self) -> bool:
        return self.state not in ("Z", "X")


def proc_info(pid: int) -> ProcInfo | None:
    """/proc/<pid>/stat, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces
    fields = raw[raw.rindex(")") + 2:].split()
    return ProcInfo(pid=pid, state=fields[0], pgrp=int(fields[2]), start_ticks=int(fields[19]))


def _all_pids() -> Iterator[int]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def group_members(pgid: int) -> list[ProcInfo]:
    """Live (non-zombie) processes of a process group."""
    found = []
    for pid in _all_pids():
        info = proc_info(pid)
        if info is not None and info.pgrp == pgid and info.live:
            found.append(info)
    return found


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


class LocalBackend(Backend):
    name = "local"

    def __init__(self, settings: Settings, runner_module: str | None = None) -> None:
        super().__init__(settings)
        module = runner_module or os.environ.get(RUNNER_MODULE_ENV, "").strip() or f"{_PACKAGE}.runner"
        if not _MODULE_RE.fullmatch(module):
            raise ValueError(f"{RUNNER_MODULE_ENV} must be a dotted module name, got {module!r}")
        self.runner_module = module

    # -- the Backend interface -------------------------------------------------------------

    def capacity(self) -> int | None:
        return self.settings.local_max_jobs

    def launch(self, job: Record) -> dict[str, Any]:
        spec = get_app(job["app"])
        if spec is None:
            raise LaunchError(f"unknown app {job['app']!r}", "usage")
        if not spec.runs_locally:
            raise LaunchError(f"app {job['app']!r} needs its container image: it runs only on the "
                              "kubernetes backend", "usage")
        workdir = self._workdir(job)
        (workdir / "tmp").mkdir(parents=True, exist_ok=True)
        with self._locked(workdir):
            existing = self._existing(workdir)
            if existing is not None:
                return existing  # idempotent: a live runner or a finished one is not started again
            env = self._env(job, workdir)
            (workdir / INTENT_FILE).write_text(f"{time.time()}\n")
            try:
                pid = self._fork_warm(env, workdir)
            except WarmRunnerError as exc:
                log.warning("warm runner could not start job %s (%s): a plain process does", job["id"], exc)
                adopted = self._adopt_late(workdir)
                if adopted is not None:
                    return adopted
                pid = None
            if pid is None:
                pid = self._start_plain(env, workdir)
            ref = self._ref(pid, workdir)
            _write_json(workdir / LAUNCH_FILE, ref)
        log.info("runner of job %s started (pid %d)", job["id"], pid, extra={"job_id": job["id"]})
        return ref

    def warm(self) -> None:
        """Start the warm runner now (the stack's gateway does at start-up), so that the first
        job already forks from it."""
        runner = self._warm_runner(None)
        if runner is not None:
            runner.start()

    def _warm_runner(self, env: dict[str, str] | None) -> WarmRunner | None:
        """The warm runner for this backend's runners, unless turned off
        (CAESAR_LOCAL_WARM_RUNNER=0) or the job's status goes to a ws:// NATS (the zygote keeps
        nats-py's websocket support out, as the runner does for other URLs)."""
        if not self.settings.local_warm_runner:
            return None
        env = env if env is not None else self._pass_env()
        if env.get("CAESAR_NATS_URL", self.settings.nats_url).lower().startswith(("ws://", "wss://")):
            return None
        return warm_runner(self.runner_module, env["PYTHONPATH"], {k: v for k, v in env.items() if _passed(k)})

    def _fork_warm(self, env: dict[str, str], workdir: Path) -> int | None:
        """The pid of the runner forked from the warm runner; None when none is ready (nothing
        was asked). WarmRunnerError: it failed, and is stopped now (it forks nothing more)."""
        runner = self._warm_runner(env)
        return None if runner is None else runner.spawn(env, workdir, workdir / OUT_FILE)

    def _adopt_late(self, workdir: Path) -> dict[str, Any] | None:
        """A warm runner that died or hung after it forked may have left the job's runner
        behind; the child sets up its session and folder within moments of the fork, so look
        for it a few times before deciding that nothing was started."""
        for _ in range(ADOPT_TRIES):
            ref = self._adopt(workdir)
            if ref is not None:
                return ref
            time.sleep(ADOPT_INTERVAL)
        return None

    def _start_plain(self, env: dict[str, str], workdir: Path) -> int:
        try:
            with open(workdir / OUT_FILE, "ab") as out:
                proc = subprocess.Popen(  # argv list, no shell; own session = own process group
                    [sys.executable, "-m", self.runner_module], cwd=workdir, env=env,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True)
        except OSError as exc:
            raise LaunchError(f"could not start the runner: {exc.strerror or exc}", "system") from exc
        # Reap the child when it exits so no zombie stays behind (the thread dies with it).
        threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
        return proc.pid

    def poll(self, job: Record) -> PollResult:
        try:
            workdir = self._workdir(job)
        except LaunchError:
            return PollResult("GONE", message=LOST, details={"launched": False})
        if not workdir.exists():
            return PollResult("GONE", message=LOST, details={"launched": False})
        with self._locked(workdir):
            ref = self._current_ref(job, workdir)
            if ref is not None and self._alive(ref):
                return PollResult("RUNNING", details={"pid": ref.get("pid")})
            _release_finder_resources(job, workdir)
            result = _read_json(workdir / RESULT_FILE)
            if result is not None:
                return self._from_result(result)
            return PollResult("GONE", message=LOST, details={"launched": ref is not None})

    def wait_gone(self, job: Record, timeout: float) -> bool:
        """Woken by the runner's exit itself (a pidfd), not by polling: the next job's slot
        frees the moment this one's runner is gone. The runner's children (in its group) are
        stopped by the cancel that follows, if any is left."""
        try:
            ref = self._current_ref(job, self._workdir(job))
        except LaunchError:
            return True
        if ref is None or not self._alive(ref):
            return True
        try:
            fd = os.pidfd_open(int(ref["pid"]))
        except (AttributeError, OSError):  # no pidfd (old kernel), or the process just went
            return super().wait_gone(job, timeout)
        try:
            if not self._alive(ref):  # the pid was reused between the check and the open
                return True
            readable, _, _ = select.select([fd], [], [], timeout)
            return bool(readable)
        finally:
            os.close(fd)

    def cancel(self, job: Record) -> None:
        try:
            workdir = self._workdir(job)
        except LaunchError:
            return
        if not workdir.exists():
            return
        with self._locked(workdir):  # waits for a launch in progress, then stops what it started
            ref = self._current_ref(job, workdir)
            if ref is None or not ref.get("pgid"):
                return
            self._stop_group(int(ref["pgid"]), ref.get("start_ticks"), job["id"])
            _release_finder_resources(job, workdir)

    # -- helpers beyond the interface ------------------------------------------------------------

    def release(self, job: Record) -> None:
        """A job has ended and its processes are stopped: its work folder (a full copy of the
        input, decompressed) goes at once, outside any quota otherwise."""
        self.purge(job)

    def purge(self, job: Record) -> None:
        """Remove the job's work folder (also when the job expires, for folders left behind)."""
        try:
            workdir = self._workdir(job)
        except LaunchError:
            return
        shutil.rmtree(workdir, ignore_errors=True)

    def workdir(self, job_id: str) -> Path:
        return self._workdir({"id": job_id})

    # -- internals -----------------------------------------------------------------------------

    def _workdir(self, job: Record) -> Path:
        job_id = job.get("id")
        if not isinstance(job_id, str) or not is_id(job_id):  # never a path from anything else
            raise LaunchError(f"invalid job id {job_id!r}", "usage")
        return self.settings.jobs_dir / job_id

    @contextlib.contextmanager
    def _locked(self, workdir: Path) -> Iterator[None]:
        # flock belongs to the open file description: separate opens exclude threads too
        with open(workdir / LOCK_FILE, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _env(self, job: Record, workdir: Path) -> dict[str, str]:
        env = self._pass_env()
        env.update(runner_env(job, self.settings, str(workdir)))
        # The runner's JSON log goes to the stack's logs folder too (logs/runner.log), beside
        # the gateway's, so one grep follows a job through every process.
        env["CAESAR_LOG_DIR"] = str(self.settings.home / "logs")
        env.update({k: v for k, v in os.environ.items() if k in ("CAESAR_LOG_FORMAT", "CAESAR_LOG_LEVEL")})
        return env

    @staticmethod
    def _pass_env() -> dict[str, str]:
        """What of this process's environment a runner gets, and its import path."""
        env = {k: v for k, v in os.environ.items() if _passed(k)}
        env.setdefault("PATH", os.defpath)
        paths = [str(_IMPORT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        return env

    @staticmethod
    def _ref(pid: int, workdir: Path) -> dict[str, Any]:
        info = proc_info(pid)
        return {"pid": pid, "pgid": pid, "start_ticks": info.start_ticks if info else None,
                "workdir": str(workdir)}

    @staticmethod
    def _alive(ref: dict[str, Any]) -> bool:
        pid = ref.get("pid")
        info = proc_info(int(pid)) if pid else None
        if info is None or not info.live:
            return False
        return ref.get("start_ticks") is None or info.start_ticks == ref["start_ticks"]

    def _existing(self, workdir: Path) -> dict[str, Any] | None:
        """The reference of a runner that must not be started again: alive, or finished."""
        ref = _read_json(workdir / LAUNCH_FILE) or self._adopt(workdir)
        if ref is not None and self._alive(ref):
            return ref
        if (workdir / RESULT_FILE).exists():
            return ref or {"pid": None, "pgid": None, "start_ticks": None, "workdir": str(workdir)}
        return None  # never started, or died without a result: starting it is a retry

    def _current_ref(self, job: Record, workdir: Path) -> dict[str, Any] | None:
        return _read_json(workdir / LAUNCH_FILE) or job.get("backend_ref") or self._adopt(workdir)

    def _adopt(self, workdir: Path) -> dict[str, Any] | None:
        """After a crash between starting the runner and writing launch.json: find the runner by
        its working folder (it is the leader of its own session) and record it."""
        if not (workdir / INTENT_FILE).exists():
            return None
        target = str(workdir.resolve())
        for pid in _all_pids():
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            info = proc_info(pid)
            if cwd == target and info is not None and info.live and info.pgrp == pid:
                ref = self._ref(pid, workdir)
                _write_json(workdir / LAUNCH_FILE, ref)
                return ref
        return None

    @staticmethod
    def _from_result(result: dict[str, Any]) -> PollResult:
        reported = result.get("state")
        state = reported if isinstance(reported, str) and reported in FINAL_STATES else "FAILURE"
        exit_code = result.get("exit_code")
        return PollResult(
            state=state,
            exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
            error_class=result.get("error_class"),
            message=str(result.get("message") or ""),
            details={"products": result.get("products") or [], "elapsed": result.get("elapsed"),
                     "launched": True})

    def _stop_group(self, pgid: int, start_ticks: int | None, job_id: str) -> None:
        """SIGTERM the group, SIGKILL what is left after TERM_WAIT, verify that nothing survives."""
        leader = proc_info(pgid)
        if leader is not None and start_ticks is not None and leader.start_ticks != start_ticks:
            return  # the pid was reused by an unrelated process: our group is long gone
        for sig, wait in ((signal.SIGTERM, TERM_WAIT), (signal.SIGKILL, KILL_WAIT)):
            if not group_members(pgid):
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            deadline = time.monotonic() + wait
            while group_members(pgid):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            else:
                return
        raise RuntimeError(f"processes of job {job_id} survived SIGKILL")


def _passed(name: str) -> bool:
    return name in PASS_ENV or name.startswith(PASS_PREFIXES)


def _release_finder_resources(job: Record, workdir: Path) -> None:
    """A killed runner cannot clean up after its finder (BANE's /dev/shm segments)."""
    from ..runner.finders import cleanup_after

    spec = get_app(job.get("app", ""))
    if spec is not None and spec.local_entry:
        cleanup_after(spec.local_entry, str(workdir))


INTERRUPTED = "Interrupted: the local stack was stopped while the job ran; submit it again"


def terminate_all(settings: Settings) -> int:
    """Graceful stop of `make run`: stop every runner of this stack. A runner that wrote its
    result.json (it finished as the stack stopped; its products are stored) gets that outcome;
    the others are recorded as system failures ("interrupted"). Both are compare-and-sets, so a
    job whose final event already landed keeps it. Jobs still PENDING are untouched and resume
    when the stack starts again."""
    from ..ids import epoch
    from ..jobs.monitor import result_fields
    from ..jobs.records import expiry
    from ..jobs.states import ACTIVE, FAILURE, SYSTEM
    from ..store import open_store

    store = open_store(settings.db_url)
    backend = LocalBackend(settings)
    stopped = 0
    for job in store.find("jobs", {"active": True}):
        try:
            backend.cancel(job)
            result = backend.poll(job)  # the group is gone: result.json, if written, decides
        except Exception:  # noqa: BLE001 - keep stopping the others
            log.exception("stopping the runner of job %s failed", job["id"])
            continue
        stopped += 1
        now = epoch()
        changes: dict[str, Any] = {"state": FAILURE, "error_class": SYSTEM, "status": INTERRUPTED}
        if result.state in FINAL_STATES:
            changes = {"state": result.state, **result_fields(result, "recorded as the local stack stopped")}
        started = job.get("started")
        changes.setdefault("elapsed", max(0.0, now - float(started)) if started else 0.0)
        changes.update(finished=now, active=False, expires=expiry(job, now, settings.result_lifetime))
        if not store.update("jobs", job["id"], changes, expect={"state": {"in": sorted(ACTIVE)}}):
            store.update("jobs", job["id"], {"active": False}, expect={"active": True})
        backend.release(job)
    return stopped
