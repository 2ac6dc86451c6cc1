"""Opaque pagination cursors shared by every store: the (created, id) of the last item served.

Position-based, not offset-based, so records inserted while a client pages (always newer, hence
before the cursor) neither repeat nor shift items. A cursor is only a position: filters and
owner scoping are applied again on every page, so a hand-made one reveals nothing; anything
that does not decode to a position is rejected with ValueError.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

from .filters import is_number

_VERSION = 1


def encode(created: float, record_id: str) -> str:
    raw = json.dumps([_VERSION, float(created), record_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str) -> tuple[float, str]:
    """(created, id) of the position, or ValueError for anything this module did not write."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode())
    except (AttributeError, TypeError, UnicodeError, binascii.Error, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError("invalid cursor") from exc
    if (not isinstance(value, list) or len(value) != 3 or value[0] != _VERSION
            or not is_number(value[1]) or not math.isfinite(value[1])
            or not isinstance(value[2], str) or not value[2]):
        raise ValueError("invalid cursor")
    return float(value[1]), value[2]
