"""catalog.csv: one header line with the schema's column names, then one line per source.
Units live in catalog.vot and catalog.json; a plain CSV stays readable by any tool."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_csv(rows: Sequence[dict[str, Any]], names: list[str], path: Path) -> Path:
    """rows: already ordered and cleaned (values.ordered_rows); None becomes an empty cell."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in rows:
            # str(float) is the shortest repr that reads back to the same double
            writer.writerow(["" if row[name] is None else row[name] for name in names])
    return path
