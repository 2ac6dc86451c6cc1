"""The job backend contract: launch, cancel, poll (ARCHITECTURE §6).

A backend runs `python -m caesar_faas.runner` for one job, with the environment built by
`caesar_faas.runner.contract.runner_env(job, settings)`: identical for a local subprocess and a
Kubernetes Job, so the runner cannot tell them apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..store.base import Record


class LaunchError(Exception):
    """The backend refused the job. `error_class` is "usage" (the job can never run here, e.g.
    an app that needs its container image on the local backend) or "system" (try again)."""

    def __init__(self, message: str, error_class: str = "system") -> None:
        super().__init__(message)
        self.error_class = error_class


@dataclass(frozen=True)
class PollResult:
    """What the backend knows about a job right now.

    state: "PENDING" (accepted, not yet running), "RUNNING", "SUCCESS", "FAILURE", "TIMED-OUT",
           "ABORTED" (cancelled outside the service, e.g. `scancel`),
           or "GONE" (the backend has no trace of it and no final result: lost).
    """

    state: str
    exit_code: int | None = None
    error_class: str | None = None  # usage | system | timeout
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


# The key of a launch() reference that names the job to people (caesar-rest's `pid`), in order:
# an explicit "handle", the local backend's process id, a batch system's job id (Slurm), the
# Kubernetes Job name. A new backend should put its own handle under "handle".
HANDLE_KEYS = ("handle", "pid", "job_id", "name")


def handle_of(ref: Any) -> str:
    """The backend's handle of a job from its stored reference (job['backend_ref']), as a string;
    "" before any backend took the job."""
    if not isinstance(ref, dict):
        return ""
    for key in HANDLE_KEYS:
        value = ref.get(key)
        if value is not None and value != "" and not isinstance(value, (dict, list, bool)):
            return str(value)
    return ""


class Backend(ABC):
    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def launch(self, job: Record) -> dict[str, Any]:
        """Start the job. Idempotent: launching a job already launched returns its reference.
        Returns a small JSON-able reference stored in job['backend_ref']. Raises LaunchError."""

    @abstractmethod
    def cancel(self, job: Record) -> None:
        """Stop the job and free its resources. A job already gone counts as done."""

    @abstractmethod
    def poll(self, job: Record) -> PollResult: ...

    def release(self, job: Record) -> None:
        """Drop what the backend keeps for a job that has ended and been stopped (the local work
        folder with its decompressed input: the products are in storage). Default: nothing."""
        return None

    def running_count(self) -> int | None:
        """How many jobs hold a slot now, when the backend limits concurrency (local); else None."""
        return None

    def capacity(self) -> int | None:
        """Maximum concurrent jobs, or None for unlimited (the cluster queues them itself)."""
        return None

    def launched_jobs(self) -> list[Record] | None:
        """The jobs the backend runs or queues now, as {"id", "backend_ref"} records, for the
        monitor's orphan scan (those the store says are finished or does not know are
        cancelled); None when the backend cannot list them or it is not time to scan."""
        return None
