"""Owner scoping: another user's record answers exactly like a missing one (404)."""

from __future__ import annotations

from typing import Any

from .errors import NotFound
from .ids import is_id


def fetch_owned(store: Any, collection: str, record_id: str, owner: str, is_admin: bool,
                what: str) -> dict[str, Any]:
    record = store.get(collection, record_id) if isinstance(record_id, str) and is_id(record_id) else None
    if record is None or (record.get("owner") != owner and not is_admin):
        raise NotFound(f"{what} {record_id} not found", code=f"{what}_not_found")
    return record


def owner_filter(owner: str, is_admin: bool, all_users: bool) -> dict[str, Any]:
    """Lists show the caller's own records; an admin may ask for everyone's."""
    return {} if (is_admin and all_users) else {"owner": owner}
