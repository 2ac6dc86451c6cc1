"""Checks on what callers write, shared by every store so all backends reject the same input."""

from __future__ import annotations

from typing import Any

from .base import Record
from .filters import is_number


def check_record(record: Record, *, full: bool) -> None:
    """insert() needs id, owner and created (files, jobs); upsert() only an id (users, stats)."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
        raise ValueError("a record needs a non-empty string id")
    if "_id" in record:
        raise ValueError("records must not carry '_id'")
    if full and (not isinstance(record.get("owner"), str) or not is_number(record.get("created"))):
        raise ValueError("insert() needs a string owner and a numeric created")


def check_changes(changes: dict[str, Any], unset: list[str] | None) -> None:
    """Top-level field names only (a dotted path would mean different things per backend)."""
    if not isinstance(changes, dict):
        raise ValueError("changes must be a dict")
    for field in list(changes) + list(unset or []):
        if not isinstance(field, str) or not field or field.startswith("$") or "." in field:
            raise ValueError(f"changes and unset take top-level field names, not {field!r}")
        if field in ("id", "_id"):
            raise ValueError("the id of a record cannot change")
    if set(changes) & set(unset or []):
        raise ValueError("a field cannot be both changed and unset")
