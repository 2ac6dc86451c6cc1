"""Open the object storage named by a URL: file:///abs/path or s3://bucket[/prefix]?options.

s3 options (query parameters): endpoint_url, region, public_endpoint_url (the host presigned URLs
are signed for, e.g. an ingress in front of an in-cluster MinIO).
file options: bucket (the bucket name put in object-created notifications; default: the folder name).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..config import Settings, load_settings
from .base import (
    CHUNK,
    MIN_PART_SIZE,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    PartUrl,
    Storage,
    validate_key,
)

__all__ = [
    "CHUNK", "MIN_PART_SIZE", "MultipartUpload", "ObjectInfo", "ObjectNotFound", "PartUrl", "Storage",
    "clear_cache", "open_storage", "validate_key",
]

_cache: dict[tuple[str, Settings], Storage] = {}
_lock = threading.Lock()


def _options(query: str) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(query).items()}


def _build(url: str, settings: Settings) -> Storage:
    parts = urlsplit(url)
    options = _options(parts.query)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file:// storage URL must be file:///absolute/path, got {url!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"file:// storage URL needs an absolute path, got {url!r}")
        from .local import LocalStorage  # imported here: s3 mode must not need the other backend

        return LocalStorage(path, settings=settings, bucket=options.get("bucket"))
    if parts.scheme == "s3":
        from .s3 import S3Storage  # boto3 is only imported when s3:// is used

        unknown = set(options) - {"endpoint_url", "region", "public_endpoint_url"}
        if unknown:
            raise ValueError(f"unknown s3:// storage options: {sorted(unknown)}")
        return S3Storage(parts.netloc, unquote(parts.path), endpoint_url=options.get("endpoint_url"),
                         region=options.get("region"), public_endpoint_url=options.get("public_endpoint_url"),
                         url=url)
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r} (use file:// or s3://)")


def open_storage(url: str, settings: Settings | None = None,
                 notify: Callable[[dict[str, Any]], None] | None = None) -> Storage:
    """The Storage for url, one instance per (url, settings) in this process.

    notify (file:// only) receives a MinIO-format record after each signed PUT and completed
    multipart upload; passing it sets it on the shared instance (the last caller's wins), passing
    None leaves an earlier one in place. s3:// ignores it: MinIO publishes its own notifications.
    """
    settings = settings or load_settings()
    with _lock:
        storage = _cache.get((url, settings))
        if storage is None:
            storage = _cache[(url, settings)] = _build(url, settings)
    if notify is not None and hasattr(storage, "notify"):
        storage.notify = notify
    return storage


def clear_cache() -> None:
    """Forget cached instances (tests that change settings or credentials)."""
    with _lock:
        _cache.clear()
