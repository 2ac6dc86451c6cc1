"""Kill a child process and all its descendants.

The runner does not put the finder in its own process group (the backend kills the runner's
whole group, finder included), so when only the runner is signalled it must find the finder's
children itself: BANE and PyBDSF may fork worker processes. Descendants are read from /proc
(Linux, as in the job images) before anything is killed, since a killed parent's children are
re-parented and could no longer be found.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

PROC = Path("/proc")


def _parents() -> dict[int, int]:
    """pid -> parent pid of every visible process."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces or parentheses, so split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1:
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid (children first-found order)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc: subprocess.Popen, wait: float = 5.0) -> None:
    """SIGKILL proc and its descendants, then reap proc. Cancel must be prompt, so no grace period:
    the finder's partial output is thrown away anyway."""
    if proc.poll() is not None:
        return
    # Stop the child first so it cannot fork more while we collect its tree.
    try:
        os.kill(proc.pid, signal.SIGSTOP)
    except ProcessLookupError:
        pass
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        pass
