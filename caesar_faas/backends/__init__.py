"""Job backends: `local` (runner subprocesses), `kubernetes` (batch/v1 Jobs), `slurm` (batch jobs
through slurmrestd)."""

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
    if settings.job_backend == "slurm":
        from .slurm import SlurmBackend

        return SlurmBackend(settings)
    raise ValueError(f"CAESAR_JOB_BACKEND must be 'local', 'kubernetes' or 'slurm', got {settings.job_backend!r}")
