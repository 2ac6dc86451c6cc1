"""How one JetStream message becomes one HTTP call, and what its answer means for the message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..events.cloudevents import binary_headers

ACK, NAK, TERM = "ack", "nak", "term"


@dataclass(frozen=True)
class Outcome:
    action: str  # ack | nak | term
    dead_letter: bool
    reason: str


def request_for(subject: str, payload: bytes, msg_id: str | None) -> tuple[dict[str, str], bytes]:
    """CloudEvents binary mode when the message is a structured CloudEvent; other JSON (MinIO's
    notifications) goes as it is, with the subject in a header."""
    headers = {"X-Caesar-Subject": subject}
    if msg_id:
        headers["Nats-Msg-Id"] = msg_id
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and doc.get("specversion") and "id" in doc and "type" in doc:
        headers.update(binary_headers(doc))
        if doc.get("requestid"):  # the function's AccessLog binds it: its lines carry the id
            headers["X-Request-Id"] = str(doc["requestid"])
        return headers, json.dumps(doc.get("data")).encode()
    headers["Content-Type"] = "application/json"
    return headers, payload


def judge(status: int | None, delivered: int, max_deliver: int) -> Outcome:
    """2xx ack; 4xx terminate (a poison message: retrying cannot help); 5xx, timeouts and
    connection errors nak with backoff until max_deliver, then dead-letter."""
    if status is not None and 200 <= status < 300:
        return Outcome(ACK, False, f"HTTP {status}")
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return Outcome(TERM, True, f"HTTP {status}: the function refused the event")
    reason = f"HTTP {status}" if status is not None else "no answer"
    if delivered >= max_deliver:
        return Outcome(TERM, True, f"{reason} after {delivered} deliveries")
    return Outcome(NAK, False, reason)


def backoff(delivered: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Delay before the next delivery: 1, 2, 4, ... seconds, at most `cap`."""
    return min(cap, base * (2 ** max(0, delivered - 1)))


def dead_letter_body(subject: str, payload: bytes, outcome: Outcome, meta: Any) -> bytes:
    return json.dumps({
        "subject": subject,
        "reason": outcome.reason,
        "stream_seq": getattr(getattr(meta, "sequence", None), "stream", None),
        "delivered": getattr(meta, "num_delivered", None),
        "payload": payload.decode("utf-8", "replace"),
    }).encode()
