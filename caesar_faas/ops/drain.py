"""Drain: an administrator stops intake for maintenance (issue 17 §3).

The switch is one record in the store (`stats`, id "service"), so every replica of every function
sees it at its next request. While draining, new uploads and submissions answer 503 with
`Retry-After` and the operator's reason; everything else goes on: running and queued jobs,
status, output, downloads, listing, deleting, cancelling, and the completion of a large upload
whose parts are already in storage (refusing it would lose what the user sent)."""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, ServiceUnavailable
from ..ids import epoch, iso_epoch
from ..store.base import Store

STATE_ID = "service"
COLLECTION = "stats"
DEFAULT_RETRY_AFTER = 600  # seconds a refused client is told to wait, unless the operator says
MAX_RETRY_AFTER = 7 * 24 * 3600
MAX_REASON = 500
BODY_KEYS = frozenset({"accepting", "reason", "retry_after"})


def state(store: Store) -> dict[str, Any]:
    """{"accepting", "reason", "retry_after", "since", "by"}: accepting when never set."""
    record = store.get(COLLECTION, STATE_ID) or {}
    return {
        "accepting": bool(record.get("accepting", True)),
        "reason": str(record.get("reason") or ""),
        "retry_after": int(record.get("retry_after") or DEFAULT_RETRY_AFTER),
        "since": iso_epoch(record.get("since")),
        "by": record.get("by"),
    }


def set_state(store: Store, body: dict[str, Any], by: str) -> dict[str, Any]:
    """Apply an administrator's PUT {"accepting": bool, "reason"?: str, "retry_after"?: int}."""
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(BODY_KEYS))})",
                         option=unknown[0])
    accepting = body.get("accepting")
    if not isinstance(accepting, bool):
        raise BadRequest("'accepting' is required and must be true or false", option="accepting")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise BadRequest(f"'reason' must be a string of at most {MAX_REASON} characters", option="reason")
    retry_after = body.get("retry_after", DEFAULT_RETRY_AFTER)
    if isinstance(retry_after, bool) or not isinstance(retry_after, int) or not 1 <= retry_after <= MAX_RETRY_AFTER:
        raise BadRequest(f"'retry_after' must be an integer number of seconds, 1 to {MAX_RETRY_AFTER}",
                         option="retry_after")
    now = epoch()
    store.upsert(COLLECTION, {"id": STATE_ID, "owner": "system", "created": now, "accepting": accepting,
                              "reason": reason if not accepting else "", "retry_after": retry_after,
                              "since": now, "by": by})
    return state(store)


def require_accepting(store: Store) -> None:
    """Raise 503 (with Retry-After and the reason) while the service is draining."""
    current = state(store)
    if current["accepting"]:
        return
    reason = current["reason"] or "maintenance"
    raise ServiceUnavailable(f"the service is not accepting new work for now ({reason}); running jobs go on, "
                             "results stay available", code="draining", reason=current["reason"],
                             headers={"Retry-After": str(current["retry_after"])})
