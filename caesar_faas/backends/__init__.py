"""Job backends: `local` (runner subprocesses) and `kubernetes` (batch/v1 Jobs)."""

from __future__ import annotations

from ..config import Settings
from .base import Backend, LaunchError, PollResult

__all__ = ["Backend", "LaunchError", "PollResult", "open_backend"]


def open_backend(settings: Settings) -> Backend:
    if settings.job_backend == "local":
        from .local import LocalBackend

        return LocalBackend(settings)
    if settings.job_backend == "kubernetes":
        from .kubernetes import KubernetesBackend

        return KubernetesBackend(settings)
    raise ValueError(f"CAESAR_JOB_BACKEND must be 'local' or 'kubernetes', got {settings.job_backend!r}")
