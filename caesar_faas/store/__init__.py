"""Open the metadata store named by CAESAR_DB_URL: `sqlite:///abs/path.db` or
`mongodb://...` / `mongodb+srv://...` (database from the URL path, default `caesar`).

One store per URL per process: the SQLite store keeps a connection per thread and a MongoClient
owns a connection pool, so both are meant to be shared. The cache is keyed by process id too,
because neither survives a fork (a child opens its own).
"""

from __future__ import annotations

import os
import threading
from urllib.parse import unquote, urlsplit

from .base import COLLECTIONS, DuplicateId, Filter, Page, Record, Store

__all__ = ["COLLECTIONS", "DuplicateId", "Filter", "Page", "Record", "Store", "clear_cache",
           "mongo_db_name", "open_store", "sqlite_path"]

DEFAULT_DB_NAME = "caesar"
_cache: dict[tuple[int, str], Store] = {}
_cache_lock = threading.Lock()


def sqlite_path(url: str) -> str:
    """The absolute file path of a `sqlite:///abs/path.db` URL (`sqlite:////abs/path.db`, what
    f"sqlite:///{absolute_path}" gives, means the same)."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.scheme != "sqlite" or parts.netloc or parts.query or not path.startswith("/") \
            or path.endswith("/"):
        raise ValueError("a SQLite URL looks like sqlite:///absolute/path/to/file.db")
    return "/" + path.lstrip("/")


def mongo_db_name(url: str) -> str:
    """The database named in the URL path (mongodb://host/<db>?opts), or `caesar`."""
    name = unquote(urlsplit(url).path.lstrip("/"))
    if any(c in name for c in '/\\. "$'):
        raise ValueError(f"invalid MongoDB database name {name!r}")
    return name or DEFAULT_DB_NAME


def _open(url: str) -> Store:
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url))
    if scheme in ("mongodb", "mongodb+srv"):
        from pymongo import MongoClient

        from .mongo import MongoStore

        store = MongoStore(MongoClient(url, appname="caesar-faas"), mongo_db_name(url))
        store.ensure_indexes()
        return store
    raise ValueError(f"unsupported database URL scheme {scheme!r} (sqlite:/// or mongodb://)")


def open_store(url: str) -> Store:
    """The shared store for `url` in this process (created on first use)."""
    key = (os.getpid(), url)
    with _cache_lock:
        store = _cache.get(key)
        if store is None:
            store = _cache[key] = _open(url)
        return store


def clear_cache() -> None:
    """Close and forget every store this process opened (tests, shutdown)."""
    with _cache_lock:
        stores = [s for (pid, _), s in _cache.items() if pid == os.getpid()]
        _cache.clear()
    for store in stores:
        store.close()
