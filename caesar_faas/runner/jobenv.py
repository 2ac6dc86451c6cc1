"""The runner's view of its environment contract (see contract.py): what to run, where, for whom."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import with_token
from .contract import PRODUCT_NAMES


class ContractError(Exception):
    """The backend started the runner with a missing or malformed variable (a system error)."""


@dataclass(frozen=True)
class TransferUrls:
    """CAESAR_JOB's "transfer": presigned URLs instead of storage credentials (see contract.py).
    Bearer credentials: never log them."""

    input_url: str
    product_urls: dict[str, str]

    def __repr__(self) -> str:  # a stray log of the context must not print the URLs
        return f"TransferUrls(<{len(self.product_urls)} product URLs>)"


@dataclass(frozen=True)
class JobContext:
    job_id: str
    owner: str
    app: str
    options: dict[str, Any]
    input_file_id: str
    input_key: str
    input_filename: str
    input_sha256: str | None  # as recorded at upload (None: unknown); the fetched bytes must match
    output_prefix: str
    timeout: float  # seconds the whole job may take, counted from the runner's start
    submitted: float
    storage_url: str | None  # None when the data moves through `transfer`
    nats_url: str
    workdir: Path
    transfer: TransferUrls | None = None
    job_key: str | None = None  # signs status events (jobs/status_auth.py)
    nats_token: str | None = field(default=None, repr=False)

    @property
    def nats_client_url(self) -> str:
        return with_token(self.nats_url, self.nats_token)

    @property
    def products_dir(self) -> Path:
        return self.workdir / "products"

    @property
    def tmp_dir(self) -> Path:
        return self.workdir / "tmp"

    @property
    def log_path(self) -> Path:
        return self.workdir / "job.log"


def _require(env: dict[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ContractError(f"{name} is not set")
    return value


def workdir_from_env(env: dict[str, str] | None = None) -> Path | None:
    """The work folder alone, so that even a broken CAESAR_JOB can leave a log and result.json."""
    raw = (os.environ if env is None else env).get("CAESAR_WORKDIR", "").strip()
    return Path(raw) if raw else None


def _transfer(raw: Any) -> TransferUrls:
    """The "transfer" member, checked: a URL for the input and one for every product."""
    if not isinstance(raw, dict):
        raise ContractError("CAESAR_JOB transfer is not a JSON object")
    input_url = raw.get("input_url")
    urls = raw.get("product_urls")
    if not isinstance(input_url, str) or not input_url.startswith(("http://", "https://")):
        raise ContractError("CAESAR_JOB transfer.input_url is not an http(s) URL")
    if not isinstance(urls, dict):
        raise ContractError("CAESAR_JOB transfer.product_urls is not a JSON object")
    missing = [name for name in PRODUCT_NAMES
               if not isinstance(urls.get(name), str) or not urls[name].startswith(("http://", "https://"))]
    if missing:
        # Checked now rather than when uploading: a job that could not store its results
        # should not run at all.
        raise ContractError(f"CAESAR_JOB transfer.product_urls lacks a URL for {', '.join(missing)}")
    return TransferUrls(input_url=input_url, product_urls={name: str(urls[name]) for name in PRODUCT_NAMES})


def _sha256(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9a-f]{64}", raw):
        raise ContractError("CAESAR_JOB input.sha256 is not 64 lower-case hex digits")
    return raw


def load_context(env: dict[str, str] | None = None) -> JobContext:
    """Parse the contract variables; raises ContractError naming the first problem."""
    env = dict(os.environ if env is None else env)
    try:
        job = json.loads(_require(env, "CAESAR_JOB"))
    except json.JSONDecodeError as exc:
        raise ContractError(f"CAESAR_JOB is not JSON: {exc}") from exc
    if not isinstance(job, dict):
        raise ContractError("CAESAR_JOB is not a JSON object")
    transfer = _transfer(job["transfer"]) if "transfer" in job else None
    try:
        inp = job["input"]
        context = JobContext(
            job_id=str(job["id"]),
            owner=str(job["owner"]),
            app=str(job["app"]),
            options=dict(job.get("options") or {}),
            input_file_id=str(inp.get("file_id", "")),
            input_key=str(inp["key"]),
            input_filename=str(inp.get("filename", "")),
            input_sha256=_sha256(inp.get("sha256")),
            output_prefix=str(job["output_prefix"]),
            timeout=float(job["timeout"]),
            submitted=float(job.get("submitted") or 0.0),
            # With presigned URLs the runner needs (and gets) no storage access of its own.
            storage_url=None if transfer is not None else _require(env, "CAESAR_STORAGE_URL"),
            nats_url=_require(env, "CAESAR_NATS_URL"),
            workdir=Path(_require(env, "CAESAR_WORKDIR")),
            transfer=transfer,
            job_key=env.get("CAESAR_JOB_KEY") or None,
            nats_token=env.get("CAESAR_NATS_TOKEN") or None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ContractError(f"CAESAR_JOB lacks a valid field: {exc!r}") from exc
    if not context.output_prefix.endswith("/"):
        raise ContractError("CAESAR_JOB output_prefix must end with '/'")
    if context.timeout <= 0:
        raise ContractError("CAESAR_JOB timeout must be positive")
    return context
