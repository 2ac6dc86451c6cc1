"""Has anything been committed to a SQLite database since a given moment? Answered without a
syscall, from the WAL-index header SQLite keeps in the database's `-shm` file.

Why: a point read through sqlite3 lets go of the GIL twice (sqlite3_step, then the step that
finds the end), and with 16 request threads each let-go is a queue of context switches. A status
request at 16 connections spent half its CPU there (issue 11). SQLiteStore.get keeps recent
documents beside the header they were read under and answers again from memory while the header
is unchanged.

The header (https://www.sqlite.org/walformat.html, "The WAL-Index Header") is the first 96
bytes of the -shm file: two 48-byte copies of iVersion, iChange, mxFrame, nPage, the salts and
checksums. Every commit of any process rewrites it (copy 2, a barrier, copy 1); readers begin
each transaction by reading it, so an unchanged header means the database is unchanged. Copies
that differ mean a commit is being published: no answer then.

Two hazards decide how the file is held:
- SQLite's locks on the -shm file are POSIX record locks, which the kernel drops for the whole
  process when *any* descriptor of that file is closed. So a mapping, once made, is never closed
  (nor its descriptors): closing one would silently take the locks of every SQLite connection of
  the process, and another process could then truncate the file under them (seen: SIGBUS and
  "locking protocol" errors). Mappings are kept per (process, file), at most MAX_MAPPINGS.
- SQLite truncates or recreates the -shm file only when no process holds it open. The store asks
  for a mapping only after one of its own connections has read in WAL mode, reads it only while
  its connections are open (they hold the file), and a mapping of a file since replaced (another
  inode) is not reused.
"""

from __future__ import annotations

import mmap
import os
import threading
from pathlib import Path

HEADER_COPY = 48
HEADER = 2 * HEADER_COPY
MAX_MAPPINGS = 32  # databases per process with the shortcut (a service has one; tests have many)

_lock = threading.Lock()
_mappings: dict[tuple[int, str], WalVersion] = {}  # (pid, -shm path) -> its mapping
_replaced: list[WalVersion] = []  # mappings of replaced files: kept, a collected mmap closes its descriptor


class WalVersion:
    def __init__(self, fd: int, inode: tuple[int, int]) -> None:
        self.pid = os.getpid()
        self.inode = inode
        self._fd = fd  # kept open for the life of the process: see the module's docstring
        self._map = mmap.mmap(fd, HEADER, access=mmap.ACCESS_READ)

    def current(self) -> bytes | None:
        """The committed state as an opaque token (equal tokens, same database contents), or
        None while a commit is being published."""
        head = self._map[:HEADER]
        first = head[:HEADER_COPY]
        return first if first == head[HEADER_COPY:] else None


def wal_version(database: Path) -> WalVersion | None:
    """The mapping of this database's WAL-index header for this process, or None (not in WAL
    mode, no -shm file, an in-memory database, or MAX_MAPPINGS reached). Call only while a
    connection of this process to the database has read in WAL mode."""
    shm = f"{database}-shm"
    with _lock:
        try:
            info = os.stat(shm)
        except OSError:
            return None
        inode = (info.st_dev, info.st_ino)
        key = (os.getpid(), shm)
        known = _mappings.get(key)
        if known is not None and known.inode == inode:
            return known
        mine = sum(1 for pid, _ in _mappings if pid == key[0])
        if info.st_size < HEADER or mine >= MAX_MAPPINGS:
            return None
        try:
            fd = os.open(shm, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != inode:  # replaced between stat and open: skip
            return None  # fd left open on purpose (closing it could drop SQLite's locks)
        mapping = WalVersion(fd, inode)
        if known is not None:
            _replaced.append(known)
        _mappings[key] = mapping
        return mapping
