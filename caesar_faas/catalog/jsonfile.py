"""catalog.json: {"columns": [{name, unit, description}], "sources": [...], "provenance": {...}}."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_json(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str, str]],
               provenance: dict[str, Any], path: Path) -> Path:
    """columns: the schema's (name, unit, dtype, description); rows ordered and cleaned, so no
    NaN reaches the file (JSON has none): a missing value is null."""
    doc = {
        "columns": [{"name": name, "unit": unit, "description": description}
                    for name, unit, _dtype, description in columns],
        "sources": list(rows),
        "provenance": provenance,
    }
    # dumps, not dump: only a one-shot encode uses the C encoder (5x faster for a big catalogue).
    text = json.dumps(doc, allow_nan=False, separators=(",", ":"))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
