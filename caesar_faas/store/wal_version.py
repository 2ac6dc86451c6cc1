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

Safety of the mapping: SQLite truncates the -shm file only when a connection opens and finds no
other connection holding it (the DMS lock). The store maps it only after one of its own
connections has read in WAL mode (and so holds that lock) and unmaps it before closing them.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

HEADER_COPY = 48
HEADER = 2 * HEADER_COPY


class WalVersion:
    def __init__(self, database: Path) -> None:
        """Raises OSError when the database has no readable -shm file (not in WAL mode, an
        in-memory database, a filesystem without shared memory)."""
        fd = os.open(f"{database}-shm", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_size < HEADER:
                raise OSError("the -shm file holds no WAL-index header yet")
            self._map: mmap.mmap | None = mmap.mmap(fd, HEADER, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)  # the mapping keeps the file
        self.pid = os.getpid()

    def current(self) -> bytes | None:
        """The committed state as an opaque token (equal tokens, same database contents), or
        None while a commit is being published or after close()."""
        mapped = self._map
        if mapped is None:
            return None
        try:
            head = mapped[:HEADER]
        except ValueError:  # closed by another thread meanwhile
            return None
        first = head[:HEADER_COPY]
        return first if first == head[HEADER_COPY:] else None

    def close(self) -> None:
        mapped, self._map = self._map, None
        if mapped is not None:
            mapped.close()
