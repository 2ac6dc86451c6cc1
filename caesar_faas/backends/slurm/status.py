"""Map a Slurm job's state to a PollResult (ARCHITECTURE §6, issue 16). Pure, tested without a cluster.

  PENDING, CONFIGURING, REQUEUED, REQUEUE_HOLD, ... -> PENDING
  RUNNING, COMPLETING, SUSPENDED, STOPPED, ...      -> RUNNING
  COMPLETED                                         -> SUCCESS, exit code 0
  FAILED (and SPECIAL_EXIT)                         -> FAILURE with the runner's exit code, classed
                                                       as the runner does (runner/outcome.py)
  TIMEOUT, DEADLINE                                 -> TIMED-OUT, class timeout
  CANCELLED                                         -> ABORTED (cancelled outside the service:
                                                       the service's own cancel ended the job first)
  NODE_FAIL, BOOT_FAIL, OUT_OF_MEMORY, PREEMPTED    -> FAILURE, class system
  anything else                                     -> None: the caller leaves the job unchanged
"""

from __future__ import annotations

from ...jobs.states import SYSTEM, TIMEOUT
from ...runner.outcome import EXIT_TIMEOUT, error_class_for_exit
from ..base import PollResult
from .api import SlurmJob

QUEUED = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
                    "POWER_UP_NODE"})
BUSY = frozenset({"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "RESIZING", "STAGE_OUT",
                  "UPDATE_DB"})
TIMED = frozenset({"TIMEOUT", "DEADLINE"})
BROKEN = {
    "NODE_FAIL": "the node running it failed",
    "BOOT_FAIL": "its node failed to boot",
    "OUT_OF_MEMORY": "it ran out of memory (raise the app's memory limit)",
    "PREEMPTED": "Slurm preempted it",
}
ABORTED = "ABORTED"


def classify(job: SlurmJob) -> PollResult | None:
    """The PollResult for `job` as slurmctld reports it; None for a state this module does not know."""
    details = {"slurm_job_id": job.slurm_id, "slurm_state": job.state, "slurm_reason": job.reason}
    if job.start_time and job.end_time and job.end_time >= job.start_time and job.state not in QUEUED | BUSY:
        details["elapsed"] = job.end_time - job.start_time
    where = f"Slurm job {job.slurm_id}"
    if job.state in QUEUED:
        why = f" ({job.reason})" if job.reason and job.reason != "None" else ""
        return PollResult("PENDING", message=f"{where} is queued{why}", details=details)
    if job.state in BUSY:
        return PollResult("RUNNING", message=f"{where} is {job.state.lower()}", details=details)
    if job.state == "COMPLETED":
        return PollResult("SUCCESS", exit_code=0, message=f"{where} completed", details=details)
    if job.state in TIMED:
        return PollResult("TIMED-OUT", exit_code=EXIT_TIMEOUT, error_class=TIMEOUT, details=details,
                          message=f"{where} reached its time limit ({job.state})")
    if job.state == "CANCELLED":
        return PollResult(ABORTED, message=f"{where} was cancelled outside the service", details=details)
    if job.state in BROKEN:
        return PollResult("FAILURE", exit_code=job.exit_code or None, error_class=SYSTEM, details=details,
                          message=f"{where} failed: {BROKEN[job.state]} ({job.state})")
    if job.state in ("FAILED", "SPECIAL_EXIT"):
        code = job.exit_code
        if job.signal is not None:
            return PollResult("FAILURE", exit_code=code, error_class=SYSTEM, details=details,
                              message=f"{where} failed: the runner was killed by signal {job.signal}")
        error_class = error_class_for_exit(code) if code else SYSTEM
        return PollResult("FAILURE", exit_code=code, error_class=error_class or SYSTEM, details=details,
                          message=f"{where} failed: the runner exited with code {code}")
    return None
