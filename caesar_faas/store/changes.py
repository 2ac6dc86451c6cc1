"""Record changes made by this process, for long polls to wake on at once.

A long poll (longpoll.py) re-reads its record every POLL_INTERVAL in any case: another process
may have written it (in a cluster the status consumer and the status function are separate
functions). A change this process writes also wakes it at once; in the local gateway, which hosts
both, a client waiting on a job learns of its end within milliseconds rather than up to half a
second later (issue 11: submit -> SUCCESS of a short job).

Only records someone waits on are tracked, so a change nobody watches costs one dict lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_changed = threading.Condition()
_watched: dict[tuple[str, str], list[int]] = {}  # (collection, id) -> [waiters, changes seen]


def changed(collection: str, record_id: str) -> None:
    """The record was written (call after the write is visible to readers)."""
    key = (collection, record_id)
    with _changed:
        entry = _watched.get(key)
        if entry is not None:
            entry[1] += 1
            _changed.notify_all()


class Watch:
    def __init__(self, key: tuple[str, str], seen: int) -> None:
        self._key, self._seen = key, seen

    def wait(self, timeout: float) -> bool:
        """Until the record changes (True) or timeout seconds pass (False)."""
        with _changed:
            changed_now = _changed.wait_for(lambda: _watched[self._key][1] != self._seen, timeout)
            self._seen = _watched[self._key][1]
            return bool(changed_now)


@contextmanager
def watching(collection: str, record_id: str) -> Iterator[Watch]:
    """Watch one record: enter before reading it, so no change falls between the read and a wait."""
    key = (collection, record_id)
    with _changed:
        entry = _watched.setdefault(key, [0, 0])
        entry[0] += 1
        watch = Watch(key, entry[1])
    try:
        yield watch
    finally:
        with _changed:
            entry[0] -= 1
            if entry[0] == 0:
                del _watched[key]
