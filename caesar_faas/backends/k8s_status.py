"""Map a Job's conditions and its pods' states to a PollResult (ARCHITECTURE §6).

Pure functions over the API's JSON, so every rule is tested without a server:

  Job condition Complete (or SuccessCriteriaMet)        -> SUCCESS, exit code 0
  Job condition Failed / FailureTarget, DeadlineExceeded -> TIMED-OUT, class timeout
  Job condition Failed / FailureTarget, anything else    -> FAILURE with the runner container's exit
                                                            code from the pod's terminated state,
                                                            classified like the runner does
                                                            (runner/outcome.py); no code -> system
  a pod waiting in ImagePullBackOff, ErrImagePull, InvalidImageName, CreateContainerConfigError
  or Unschedulable for longer than the grace period     -> FAILURE, class system, and delete=True
                                                            (the caller deletes the Job)
  a pod that started (Running, or already ended)         -> RUNNING
  otherwise (no pod yet, pod pending within the grace)   -> PENDING
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..jobs.states import SYSTEM, TIMEOUT
from ..runner.outcome import EXIT_TIMEOUT, error_class_for_exit
from .base import PollResult
from .k8s_manifest import CONTAINER

STUCK_WAITING = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError",
})
UNSCHEDULABLE = "Unschedulable"
MESSAGE_MAX = 500


@dataclass(frozen=True)
class Verdict:
    result: PollResult
    delete: bool = False  # the Job is stuck for good: delete it so it holds no quota


def parse_time(value: str | None) -> float | None:
    """RFC 3339 timestamp of the API ("2024-05-01T10:00:00Z") as epoch seconds."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _condition(obj: dict[str, Any], *types: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") in types and cond.get("status") == "True":
            return cond
    return None


def _short(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= MESSAGE_MAX else "…" + text[-MESSAGE_MAX:]


def _runner_status(pod: dict[str, Any]) -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            return status
    return {}


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    status = _runner_status(pod)
    return (status.get("state") or {}).get("terminated") or (status.get("lastState") or {}).get("terminated")


def _created(pod: dict[str, Any]) -> float:
    return parse_time((pod.get("metadata") or {}).get("creationTimestamp")) or 0.0


def _failed_termination(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The runner's terminated state in the newest pod that ended non-zero (else in any that ended)."""
    ended = [(p, t) for p in pods if (t := _terminated(p)) is not None]
    ended.sort(key=lambda pt: _created(pt[0]), reverse=True)
    for _, term in ended:
        if term.get("exitCode", 0) != 0:
            return term
    return ended[0][1] if ended else None


def _stuck_reason(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when the pod cannot start by itself: bad image, missing secret, no node."""
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return None
    waiting = (_runner_status(pod).get("state") or {}).get("waiting") or {}
    if waiting.get("reason") in STUCK_WAITING:
        return waiting["reason"], waiting.get("message", "")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason") == UNSCHEDULABLE:
            return UNSCHEDULABLE, cond.get("message", "")
    return None


def _finished(job_obj: dict[str, Any], pods: list[dict[str, Any]]) -> PollResult | None:
    if (cond := _condition(job_obj, "Complete", "SuccessCriteriaMet")) is not None:
        return PollResult("SUCCESS", exit_code=0, message="the Kubernetes Job completed")
    cond = _condition(job_obj, "Failed", "FailureTarget")
    if cond is None:
        return None
    reason = cond.get("reason") or ""
    if reason == "DeadlineExceeded":
        return PollResult("TIMED-OUT", exit_code=EXIT_TIMEOUT, error_class=TIMEOUT,
                          message=_short(cond.get("message")) or "the job ran past its timeout",
                          details={"reason": reason})
    term = _failed_termination(pods)
    details: dict[str, Any] = {"reason": reason}
    if term is None:
        return PollResult("FAILURE", error_class=SYSTEM, details=details,
                          message=_short(cond.get("message")) or f"the Kubernetes Job failed ({reason})")
    code = int(term.get("exitCode", 0))
    details["container_reason"] = term.get("reason", "")
    if term.get("reason") == "OOMKilled":
        return PollResult("FAILURE", exit_code=code, error_class=SYSTEM, details=details,
                          message="the job ran out of memory (raise the app's memory limit)")
    error_class = error_class_for_exit(code) if code else SYSTEM
    message = _short(term.get("message")) or _short(cond.get("message")) or f"the runner exited with code {code}"
    return PollResult("FAILURE", exit_code=code, error_class=error_class, message=message, details=details)


def classify(job_obj: dict[str, Any], pods: list[dict[str, Any]], *, now: float, grace: float) -> Verdict:
    """The verdict on a Job that exists (`job_obj` as the API returns it, `pods` its pods)."""
    done = _finished(job_obj, pods)
    if done is not None:
        return Verdict(done)
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    waiting_note = ""
    for pod in live:
        stuck = _stuck_reason(pod)
        if stuck is None:
            continue
        reason, text = stuck
        age = now - (_created(pod) or now)
        if age >= grace:
            return Verdict(PollResult("FAILURE", error_class=SYSTEM, details={"reason": reason},
                                      message=_short(f"the job's pod could not start for {int(age)} s: "
                                                     f"{reason}: {text}")), delete=True)
        waiting_note = f"waiting for {int(age)} s: {reason}"
    if any((p.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed") for p in live):
        return Verdict(PollResult("RUNNING", message="the job's pod is running"))
    return Verdict(PollResult("PENDING", message=waiting_note or "the Job waits for its pod to start"))
