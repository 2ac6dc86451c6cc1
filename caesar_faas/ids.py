"""Identifiers and timestamps."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_id() -> str:
    """A random id (uuid4, caesar-rest's `uuid`): lower-case, DNS-1123 safe."""
    return str(uuid.uuid4())


def is_id(value: str) -> bool:
    """True when value looks like an id we issued; anything else can be answered 404 at once."""
    return bool(_ID_RE.match(value or ""))


def now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with milliseconds."""
    return (ts or now()).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_epoch(ts: float | None) -> str | None:
    """iso() of epoch seconds; None stays None."""
    return None if ts is None else iso(datetime.fromtimestamp(ts, UTC))


def epoch() -> float:
    return now().timestamp()
