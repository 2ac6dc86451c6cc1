"""Worker functions run in other processes by the store tests (importable under spawn)."""

from __future__ import annotations

from caesar_faas.store.base import Store
from caesar_faas.store.sqlite import SQLiteStore


def cas_increment(store: Store, counter_id: str, times: int) -> int:
    """Add 1 to stats[counter_id].n `times` times with compare-and-set; returns the retries."""
    retries = 0
    done = 0
    while done < times:
        current = store.get("stats", counter_id)["n"]
        if store.update("stats", counter_id, {"n": current + 1}, expect={"n": current}):
            done += 1
        else:
            retries += 1
    return retries


def sqlite_increments(path: str, counter_id: str, times: int) -> int:
    store = SQLiteStore(path)
    try:
        return cas_increment(store, counter_id, times)
    finally:
        store.close()


def sqlite_start_jobs(path: str, job_ids: list[str], name: str) -> list[str]:
    """Try PENDING -> STARTED on every job; the ids this racer won."""
    store = SQLiteStore(path)
    try:
        return [job_id for job_id in job_ids
                if store.update("jobs", job_id, {"state": "STARTED", "by": name},
                                expect={"state": "PENDING"})]
    finally:
        store.close()


def shm_dms_held(shm_path: str) -> bool:
    """Whether some other process holds SQLite's "DMS" lock on a -shm file (the lock that tells a
    newcomer the file is in use and must not be truncated): byte 128, UNIX_SHM_BASE + 8 in
    SQLite's os_unix.c."""
    import fcntl
    import os
    import struct

    fd = os.open(shm_path, os.O_RDWR)
    try:
        probe = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 128, 1, 0)  # struct flock
        return struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, probe))[0] != fcntl.F_UNLCK
    finally:
        os.close(fd)
