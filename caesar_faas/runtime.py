"""The connections a function needs, opened once per process and reused across invocations.

Settings are read from the environment; connections are cached per configuration so that a test
changing CAESAR_* variables gets fresh ones while a deployed function keeps its pool warm.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .config import Settings, load_settings


@dataclass
class Services:
    settings: Settings

    @cached_property
    def store(self) -> Any:
        from .store import open_store

        return open_store(self.settings.db_url)

    @cached_property
    def storage(self) -> Any:
        from .storage import open_storage

        return open_storage(self.settings.storage_url, self.settings, notify=self.publish_storage_event)

    @cached_property
    def bus(self) -> Any:
        from .events.bus import get_bus

        return get_bus(self.settings.nats_client_url)

    @cached_property
    def backend(self) -> Any:
        from .backends import open_backend

        return open_backend(self.settings)

    def publish_storage_event(self, record: dict[str, Any]) -> None:
        """file:// mode stands in for MinIO: its object-created records go where MinIO's would."""
        import json

        from .events.subjects import STORAGE_EVENTS
        from .storage.notifications import parse_minio_record

        _, _, key, _, etag = parse_minio_record(record)[0]
        self.bus.publish_raw(STORAGE_EVENTS, json.dumps(record).encode(), msg_id=storage_event_id(key, etag))


def storage_event_id(key: str, etag: str | None) -> str:
    """One id per object version, whoever announces it (the storage or the complete call), so
    JetStream drops the second announcement."""
    return f"storage-{key}-{etag}"


_lock = threading.Lock()
_cache: dict[Settings, Services] = {}


_last: tuple[Settings, Services] | None = None


def services() -> Services:
    global _last
    settings = load_settings()
    last = _last
    if last is not None and last[0] is settings:  # the usual case: nothing changed since the last call
        return last[1]
    with _lock:
        found = _cache.get(settings)
        if found is None:
            found = _cache[settings] = Services(settings)
        _last = (settings, found)
        return found
