"""Job products: which exist, their media types, the tar.gz of all of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import NotFound
from .jobs.states import SUCCESS, TERMINAL
from .runner.contract import output_prefix
from .runner.manifest import media_type
from .storage.base import ObjectNotFound
from .tarstream import tar_gz

MAX_PRODUCT_NAME = 255  # a file name, as the products are written to disk before upload


def is_finished(job: dict[str, Any]) -> bool:
    return job.get("state") in TERMINAL


def not_ready_view(job: dict[str, Any]) -> dict[str, Any]:
    """caesar-rest answers 202 with the state while a job runs."""
    return {"job_id": job["id"], "state": job["state"], "status": job.get("status", ""),
            "progress": job.get("progress", 0)}


def product_names(storage: Any, job: dict[str, Any]) -> list[str]:
    """What is really stored under the job's prefix (a failed job may hold only its log)."""
    prefix = output_prefix(job["owner"], job["id"])
    return [info.key[len(prefix):] for info in storage.list(prefix)]


def product(storage: Any, job: dict[str, Any], name: str) -> tuple[str, str]:
    """Storage key and media type of one product, or 404."""
    if ("/" in name or name.startswith(".") or len(name) > MAX_PRODUCT_NAME
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)):
        # No product has such a name (nor could a storage key): not found, without echoing it.
        raise NotFound("no such product", code="product_not_found")
    key = output_prefix(job["owner"], job["id"]) + name
    try:
        storage.stat(key)
    except ObjectNotFound as exc:
        detail = "" if job.get("state") == SUCCESS else f" (the job ended {job['state']})"
        raise NotFound(f"product {name} not found{detail}", code="product_not_found") from exc
    return key, media_type(name)


def archive(storage: Any, job: dict[str, Any], root: str | None = None) -> Iterator[bytes]:
    """The tar.gz of every product, under the folder `root` (default: the job id)."""
    prefix = output_prefix(job["owner"], job["id"])
    names = product_names(storage, job)
    if not names:
        raise NotFound(f"job {job['id']} has no products", code="no_products")
    return tar_gz(storage, [(prefix + name, name) for name in names], root=root or job["id"])
