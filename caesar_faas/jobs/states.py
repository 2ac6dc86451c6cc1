"""Job states (caesar-rest names) and the only transitions allowed between them (ARCHITECTURE §6).

PENDING -> STARTED -> RUNNING -> SUCCESS | FAILURE | TIMED-OUT | ABORTED
A state may be skipped forward (a fast job's first event can be "finished"), never moved back;
terminal states never change. Every transition is a compare-and-set on the current state.
"""

from __future__ import annotations

PENDING = "PENDING"  # stored; not yet accepted by a backend (queued for a slot, or not dispatched)
STARTED = "STARTED"  # the backend accepted it; the runner has not reported yet
RUNNING = "RUNNING"  # the runner reported it started
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
TIMED_OUT = "TIMED-OUT"
ABORTED = "ABORTED"

ORDER = [PENDING, STARTED, RUNNING]
TERMINAL = frozenset({SUCCESS, FAILURE, TIMED_OUT, ABORTED})
ACTIVE = frozenset(ORDER)
ALL = ORDER + [SUCCESS, FAILURE, TIMED_OUT, ABORTED]

# Machine error classes (Rubin UWS lesson): retries only make sense for "system".
USAGE = "usage"
SYSTEM = "system"
TIMEOUT = "timeout"


def rank(state: str) -> int:
    return len(ORDER) if state in TERMINAL else ORDER.index(state)


def states_before(target: str) -> list[str]:
    """The states from which `target` may be reached (the `expect` of its compare-and-set)."""
    if target in TERMINAL:
        return list(ORDER)
    return ORDER[: ORDER.index(target)]


def is_terminal(state: str) -> bool:
    return state in TERMINAL
