"""Catalogue cells as plain Python values, whatever type the finder adapter produced them in."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def clean(value: Any) -> Any:
    """numpy scalars -> Python scalars; NaN, +-inf and masked values -> None (no value)."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def ordered_rows(rows: Iterable[Mapping[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """Rows restricted to the schema's column names, in its order, cells cleaned; a column a
    finder does not provide is None (so every product has every schema column)."""
    return [{name: clean(row.get(name)) for name in names} for row in rows]


def finite(value: Any) -> float | None:
    """value as a finite float, or None."""
    value = clean(value)
    if value is None or isinstance(value, (str, bool)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
