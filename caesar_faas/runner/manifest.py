"""manifest.json: [{"name", "size", "sha256", "media_type"}] for every other product, so a
client can verify each download."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..checksums import file_sha256
from .contract import MANIFEST as MANIFEST  # the name is part of the runner contract

MEDIA_TYPES = {
    ".csv": "text/csv",
    ".vot": "application/x-votable+xml",
    ".json": "application/json",
    ".reg": "text/plain",  # DS9 regions: no registered type; text is what browsers show
    ".png": "image/png",
    ".fits": "application/fits",
    ".log": "text/plain",
}


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def manifest_entry(path: Path) -> dict[str, Any]:
    return {"name": path.name, "size": path.stat().st_size, "sha256": file_sha256(path),
            "media_type": media_type(path.name)}


def write_manifest(entries: list[dict[str, Any]], path: Path) -> Path:
    path.write_text(json.dumps(entries, indent=1))
    return path
