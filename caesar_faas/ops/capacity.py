"""caesar_capacity_needed_cores{app}: the cores an app needs so that every job waiting now starts
within CAESAR_TARGET_WAIT seconds (default 300), the figure an autoscaler or an operator sizes the
cluster with.

With a recent mean run time m and a target wait T, one slot starts floor(T / m) + 1 waiting jobs
within T (the first at once, the next after each run). Q waiting jobs then need
ceil(Q / (floor(T / m) + 1)) slots beside the R jobs running now, and each slot holds the cores
the app's spec requests: cores = (R + that) * cpu. Without a recent run time the app's default
timeout stands in for it (pessimistic: one slot per waiting job when T is shorter)."""

from __future__ import annotations

import math
import os


def target_wait() -> float:
    raw = os.environ.get("CAESAR_TARGET_WAIT", "").strip()
    return max(1.0, float(raw)) if raw else 300.0


def cpu_request(resources: dict[str, dict[str, str]]) -> float:
    """Cores of a Kubernetes quantity in the app spec's requests ("1", "500m"); 1 when absent."""
    raw = str((resources.get("requests") or {}).get("cpu") or "1").strip()
    try:
        return float(raw[:-1]) / 1000 if raw.endswith("m") else float(raw)
    except ValueError:
        return 1.0


def needed_cores(waiting: int, running: int, mean_run: float, cpu: float, wait: float) -> float:
    if waiting <= 0:
        return running * cpu
    per_slot = math.floor(wait / max(mean_run, 1e-3)) + 1
    return (running + math.ceil(waiting / per_slot)) * cpu
