"""One monitor run: every periodic duty of the service, each bounded and safe to repeat."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("caesar.monitor")

OUTBOX_AFTER = 30.0  # seconds before an unannounced file is announced again


def republish_files(svc: Any, now: float, batch: int = 100) -> int:
    """The files outbox: records stored but whose files.created was not published."""
    from .files import announce

    count = 0
    for rec in svc.store.find("files", {"status": "ready", "announced": False, "created": {"lt": now - OUTBOX_AFTER}},
                              limit=batch):
        count += int(announce(svc, rec))
    return count


def finish_deletions(svc: Any, now: float, batch: int = 100) -> int:
    """Deletions interrupted between marking the record and removing it."""
    from .files import finish_delete

    stale = svc.store.find("files", {"status": "deleting"}, limit=batch)
    for rec in stale:
        finish_delete(svc, rec)
    return len(stale)


def run(svc: Any) -> dict[str, Any]:
    from . import accounting, uploads
    from .jobs.monitor import run_monitor

    now = time.time()
    summary: dict[str, Any] = {}
    duties = [
        ("jobs", lambda: run_monitor(svc.store, svc.backend, svc.bus, svc.settings, now, storage=svc.storage)),
        ("uploads_expired", lambda: uploads.expire(svc, now)),
        ("files_announced", lambda: republish_files(svc, now)),
        ("deletions_finished", lambda: finish_deletions(svc, now)),
        ("accounting", lambda: accounting.save(svc.store, accounting.compute(svc.store, now)) or "saved"),
    ]
    for name, duty in duties:
        # One failing duty must not starve the others; the next run tries again.
        try:
            summary[name] = duty()
        except Exception as exc:  # noqa: BLE001
            log.exception("monitor duty %s failed", name)
            summary[name] = f"failed: {type(exc).__name__}"
    return summary
