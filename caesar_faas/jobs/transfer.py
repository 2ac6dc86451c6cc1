"""Presigned URLs that let a job's runner move its data without storage credentials.

The Kubernetes and Slurm backends put them in CAESAR_JOB's "transfer" member (runner/contract.py): one GET
of the job's input and one PUT per product name under the job's output prefix, nothing else. A
leaked Job manifest therefore exposes one input and one job's products, for the job's lifetime,
instead of the whole bucket for as long as the keys live.

Product PUTs are signed without a size (the products do not exist yet when the Job is created):
any size up to storage.base.MAX_UNSIZED_PUT.
"""

from __future__ import annotations

import math
from typing import Any

from ..runner.contract import PRODUCT_NAMES, output_prefix
from ..storage.base import Storage
from ..store.base import Record

# The URLs must outlive the Job: it may wait for a node, pull a large image, or be retried after
# an eviction before its own deadline (the job timeout) starts to matter.
QUEUE_MARGIN = 24 * 3600
# Must never reach a job that has transfer URLs: storage is reached through those URLs only.
FORBIDDEN_ENV = ("CAESAR_STORAGE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# SigV4 presigned URLs cannot be valid longer than 7 days; file:// URLs follow the same rule.
MAX_EXPIRES = 7 * 24 * 3600


def transfer_expiry(timeout: float) -> int:
    """Seconds the URLs of a job with this timeout stay valid: timeout + QUEUE_MARGIN, at most
    MAX_EXPIRES (a job longer than about six days must finish its uploads by then)."""
    return min(MAX_EXPIRES, max(1, math.ceil(float(timeout))) + QUEUE_MARGIN)


def presigned_transfer(storage: Storage, job: Record, *, expires: int) -> dict[str, Any]:
    """{"input_url": GET of job["input"]["key"], "product_urls": {name: PUT of the job's
    output prefix + name}} for every name in PRODUCT_NAMES, each valid for `expires` seconds."""
    if not 0 < expires <= MAX_EXPIRES:
        raise ValueError(f"expires must be between 1 and {MAX_EXPIRES} seconds, got {expires}")
    prefix = output_prefix(job["owner"], job["id"])
    return {
        "input_url": storage.presign_get(job["input"]["key"], expires=expires),
        "product_urls": {name: storage.presign_put(prefix + name, expires=expires) for name in PRODUCT_NAMES},
    }
