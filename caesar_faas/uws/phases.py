"""Native job states (jobs/states.py) seen as UWS 1.1 execution phases.

PENDING is split by whether the job may run yet: a UWS job created without PHASE=RUN is stored
PENDING with `hold: True` (UWS PENDING: nothing dispatches it); any other PENDING job waits for
a backend slot (UWS QUEUED). STARTED and RUNNING are EXECUTING; SUCCESS is COMPLETED; FAILURE
and TIMED-OUT are ERROR; ABORTED is ABORTED.
"""

from __future__ import annotations

from typing import Any

from ..jobs.states import ABORTED, FAILURE, PENDING, RUNNING, STARTED, SUCCESS, SYSTEM, TIMED_OUT

UWS_PENDING = "PENDING"
QUEUED = "QUEUED"
EXECUTING = "EXECUTING"
COMPLETED = "COMPLETED"
ERROR = "ERROR"
UWS_ABORTED = "ABORTED"
# Phases of the standard this service never enters (a PHASE filter on them finds nothing).
UNUSED = ("UNKNOWN", "HELD", "SUSPENDED", "ARCHIVED")
PHASES = (UWS_PENDING, QUEUED, EXECUTING, COMPLETED, ERROR, UWS_ABORTED, *UNUSED)
# UWS 1.1 §2.2.1.1: WAIT blocks only while the job is in one of these.
ACTIVE_PHASES = frozenset({UWS_PENDING, QUEUED, EXECUTING})

HOLD = "hold"  # the job record's flag: stored PENDING, waiting for PHASE=RUN

_BY_STATE = {STARTED: EXECUTING, RUNNING: EXECUTING, SUCCESS: COMPLETED, FAILURE: ERROR, TIMED_OUT: ERROR,
             ABORTED: UWS_ABORTED}


def phase_of(job: dict[str, Any]) -> str:
    state = job.get("state")
    if state == PENDING:
        return UWS_PENDING if job.get(HOLD) else QUEUED
    return _BY_STATE.get(str(state), "UNKNOWN")


def error_type(job: dict[str, Any]) -> str:
    """errorSummary type: 'transient' when running the same job again may succeed (a system
    error: a node lost, storage unreachable), 'fatal' when it would fail the same way (the
    input or the options are at fault, or it needs more than its execution duration)."""
    return "transient" if job.get("error_class") == SYSTEM else "fatal"


def store_filter(phase: str) -> dict[str, Any] | None:
    """The store condition that selects the jobs in one UWS phase (None: no job can be in it)."""
    if phase == UWS_PENDING:
        return {"state": PENDING, HOLD: True}
    if phase == QUEUED:
        return {"state": PENDING, HOLD: {"nin": [True]}}
    states = [state for state, mapped in _BY_STATE.items() if mapped == phase]
    return {"state": {"in": states}} if states else None
