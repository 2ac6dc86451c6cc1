"""Run the finder's commands: argv lists (never a shell), in the work folder, output to job.log,
each within what is left of the job's deadline."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .proctree import kill_tree

log = logging.getLogger("caesar_faas.runner.execute")


class DeadlineExceeded(BaseException):
    """The job's time ran out (any running command was killed). A BaseException, like
    KeyboardInterrupt, because the SIGALRM backstop raises it inside library code whose
    `except Exception` must not swallow it."""


def run_command(argv: Sequence[str], *, cwd: Path, log_path: Path, deadline: float) -> int:
    """Run argv until it exits (returns Popen's returncode) or the monotonic deadline passes
    (kills it, raises DeadlineExceeded). Any exception while waiting, notably Cancelled from
    the SIGTERM handler, kills the command's process tree before propagating."""
    if isinstance(argv, (str, bytes)) or not argv or not all(isinstance(arg, str) for arg in argv):
        raise TypeError(f"a command must be a non-empty list of strings, got {argv!r}")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceeded("no time left to start the command")
    proc: subprocess.Popen | None = None
    env, short_tmp = _command_env()
    try:
        with open(log_path, "ab") as log_file:  # append mode: O_APPEND keeps runner lines intact
            proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log_file, stderr=subprocess.STDOUT, close_fds=True)
        log.info("command started (pid %d)", proc.pid)
        try:
            return proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            raise DeadlineExceeded("the job timeout expired while the command ran") from None
    except BaseException:
        if proc is not None:
            kill_tree(proc)
        raise
    finally:
        if short_tmp:
            shutil.rmtree(short_tmp, ignore_errors=True)


# AF_UNIX socket paths are limited to 107 bytes, and multiprocessing (PyBDSF's Manager) puts
# its sockets in TMPDIR: a deep work folder makes them fail. Such a TMPDIR is swapped for a
# short private folder for the command's lifetime.
MAX_TMPDIR = 48


def _command_env() -> tuple[dict[str, str], str | None]:
    env = dict(os.environ)
    if len(env.get("TMPDIR", "")) <= MAX_TMPDIR:
        return env, None
    short = tempfile.mkdtemp(prefix="caesar-", dir="/tmp")
    env["TMPDIR"] = short
    return env, short


def run_commands(commands: Sequence[Sequence[str]], *, cwd: Path, log_path: Path, deadline: float,
                 on_finished: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """Run commands in order, stopping at the first non-zero exit.

    Returns (index of the last command run, its returncode); on_finished(index, total) is
    called after each command that exits 0."""
    total = len(commands)
    if total == 0:
        raise ValueError("the finder adapter gave no command to run")
    for index, argv in enumerate(commands):
        log.info("command %d/%d: %s", index + 1, total, " ".join(_quoted(arg) for arg in argv))
        code = run_command(argv, cwd=cwd, log_path=log_path, deadline=deadline)
        log.info("command %d/%d exited with %d", index + 1, total, code)
        if code != 0:
            return index, code
        if on_finished is not None:
            on_finished(index, total)
    return total - 1, 0


def _quoted(arg: str) -> str:
    """For the log only (the command is never run through a shell): repr makes odd args visible."""
    return arg if arg and all(c.isalnum() or c in "-_./=:,+@%" for c in arg) else repr(arg)
