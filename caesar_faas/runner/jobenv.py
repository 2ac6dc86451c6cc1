"""The runner's view of its environment contract (see contract.py): what to run, where, for whom."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ContractError(Exception):
    """The backend started the runner with a missing or malformed variable (a system error)."""


@dataclass(frozen=True)
class JobContext:
    job_id: str
    owner: str
    app: str
    options: dict[str, Any]
    input_file_id: str
    input_key: str
    input_filename: str
    output_prefix: str
    timeout: float  # seconds the whole job may take, counted from the runner's start
    submitted: float
    storage_url: str
    nats_url: str
    workdir: Path

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


def load_context(env: dict[str, str] | None = None) -> JobContext:
    """Parse the contract variables; raises ContractError naming the first problem."""
    env = dict(os.environ if env is None else env)
    try:
        job = json.loads(_require(env, "CAESAR_JOB"))
    except json.JSONDecodeError as exc:
        raise ContractError(f"CAESAR_JOB is not JSON: {exc}") from exc
    if not isinstance(job, dict):
        raise ContractError("CAESAR_JOB is not a JSON object")
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
            output_prefix=str(job["output_prefix"]),
            timeout=float(job["timeout"]),
            submitted=float(job.get("submitted") or 0.0),
            storage_url=_require(env, "CAESAR_STORAGE_URL"),
            nats_url=_require(env, "CAESAR_NATS_URL"),
            workdir=Path(_require(env, "CAESAR_WORKDIR")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ContractError(f"CAESAR_JOB lacks a valid field: {exc!r}") from exc
    if not context.output_prefix.endswith("/"):
        raise ContractError("CAESAR_JOB output_prefix must end with '/'")
    if context.timeout <= 0:
        raise ContractError("CAESAR_JOB timeout must be positive")
    return context
