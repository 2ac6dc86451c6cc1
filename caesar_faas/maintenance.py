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


# Seconds between two runs, whoever triggers them (CAESAR_MONITOR_MIN_INTERVAL overrides).
MIN_INTERVAL = 10.0
LOCK_ID = "monitor-run"


def min_interval() -> float:
    import os

    return float(os.environ.get("CAESAR_MONITOR_MIN_INTERVAL", "") or MIN_INTERVAL)


def claim_run(store: Any, now: float, interval: float | None = None) -> bool:
    """Compare-and-set on the last run time: of several triggers within `interval` seconds
    (cron replicas, an anonymous ping) only one runs."""
    interval = min_interval() if interval is None else interval
    if store.update("stats", LOCK_ID, {"last_run": now}, expect={"last_run": {"lt": now - interval}}):
        return True
    if store.get("stats", LOCK_ID) is None:
        from .store.base import DuplicateId

        try:
            store.insert("stats", {"id": LOCK_ID, "owner": "system", "created": now, "last_run": now})
            return True
        except DuplicateId:
            return False
    return False


def _save_accounting(svc: Any, now: float) -> str:
    from . import accounting

    accounting.save(svc.store, accounting.compute(svc.store, now))
    return "saved"


def run(svc: Any) -> dict[str, Any]:
    from . import uploads
    from .jobs import finished
    from .jobs.monitor import run_monitor

    now = time.time()
    summary: dict[str, Any] = {}
    duties = [
        ("jobs", lambda: run_monitor(svc.store, svc.backend, svc.bus, svc.settings, now, storage=svc.storage)),
        ("uploads_expired", lambda: uploads.expire(svc, now)),
        ("files_announced", lambda: republish_files(svc, now)),
        ("deletions_finished", lambda: finish_deletions(svc, now)),
        ("accounting", lambda: _save_accounting(svc, now)),
        ("notifications_swept", lambda: finished.sweep_due(svc.store, svc.bus, now, svc.settings.result_lifetime)),
    ]
    for name, duty in duties:
        # One failing duty must not starve the others; the next run tries again.
        try:
            summary[name] = duty()
        except Exception as exc:  # noqa: BLE001
            log.exception("monitor duty %s failed", name)
            summary[name] = f"failed: {type(exc).__name__}"
    return summary
