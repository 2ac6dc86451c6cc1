"""The Slurm job backend: one batch job per caesar job, through slurmrestd (ARCHITECTURE §6).

Selected with CAESAR_JOB_BACKEND=slurm; settings in config.SlurmSettings (CAESAR_SLURM_*). The
batch job is built in job.py, the state mapping is status.py, the API version's shapes are api.py;
this module talks to slurmrestd and applies the rules:

- launch presigns the job's transfer URLs with the service's storage (jobs/transfer.py), so the
  job gets no storage credentials, and submits. It is idempotent: a job that was launched before
  (dispatch attempts > 1) is first looked up by name `caesar-<job id>` and comment (the job id),
  and an existing Slurm job is returned instead of submitting a second one.
- cancel sends DELETE /slurm/<v>/job/<id> (SIGTERM, then SIGKILL after Slurm's KillWait); a job
  Slurm no longer knows or that already ended counts as cancelled.
- poll maps Slurm's state (status.py); a final state lists the products the runner uploaded,
  for when its final event never arrives (no NATS token for the nodes, NATS away). A job slurmctld no longer knows (purged MinJobAge seconds
  after it ended, or lost) is left unchanged for CAESAR_SLURM_LOST_GRACE seconds, so a final
  event still in flight can land, then reported GONE (the monitor records FAILURE, system).
  The grace is counted in this process (the monitor keeps its backend between runs); a restart
  counts it again, which only delays the verdict.
- slurmrestd unreachable, 5xx, or an answer that cannot be read: nothing changes; launch and
  cancel raise LaunchError("system") so the caller retries, poll reports the job's current
  state with details {"transient": True}.
- launched_jobs lists the caesar-* jobs Slurm holds for this user, for the monitor's orphan scan
  (at most once per CAESAR_SLURM_ORPHAN_INTERVAL seconds).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...apps.spec import AppSpec
from ...config import Settings
from ...jobs.transfer import presigned_transfer, transfer_expiry
from ...runner.contract import PRODUCT_NAMES, output_prefix
from ...storage.base import Storage
from ...store.base import Record
from ..base import Backend, LaunchError, PollResult
from .api import ALREADY_DONE, UNKNOWN_JOB, SlurmJob, api_for
from .client import Answer, SlurmClient, SlurmUnavailable
from .job import build_request, job_id_of, job_name, output_file
from .status import BUSY, QUEUED, classify

log = logging.getLogger(__name__)

# Errors that mean the job can never run on this cluster as asked (too big for every node or
# partition): retrying cannot help, so the launch fails as "usage".
NEVER_FITS = frozenset({2014, 2015})  # requested node / partition configuration unavailable
# Slurm states in which a job still holds or waits for resources (what an orphan scan cancels).
LIVE = QUEUED | (BUSY - {"COMPLETING"})


class SlurmBackend(Backend):
    name = "slurm"

    def __init__(self, settings: Settings, *, get_app: Callable[[str], AppSpec | None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings)
        self.api = api_for(settings.slurm.api)
        self.client = SlurmClient(settings.slurm, clock=clock)
        self._get_app = get_app
        self._clock = clock
        self._storage: Storage | None = None
        self._lock = threading.Lock()
        self._vanished: dict[str, float] = {}  # job id -> when Slurm was first found not to know it
        self._last_orphan_scan = float("-inf")

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def storage(self) -> Storage:
        """Opened on first use: only launch needs it (to presign)."""
        if self._storage is None:
            from ...storage import open_storage

            self._storage = open_storage(self.settings.storage_url, self.settings)
        return self._storage

    def app_spec(self, app: str) -> AppSpec | None:
        if self._get_app is not None:
            return self._get_app(app)
        from ...apps.registry import get_app

        return get_app(app)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
        return self.client.call(method, path, body)

    def _describe(self, answer: Answer) -> str:
        errors = self.api.errors(answer.body)
        text = "; ".join(f"{e.message} ({e.number})" if e.number is not None else e.message for e in errors)
        return f"HTTP {answer.status}: {text or 'no error given'}"[:300]

    def _codes(self, answer: Answer) -> set[int]:
        return {e.number for e in self.api.errors(answer.body) if e.number is not None}

    @staticmethod
    def _slurm_id(job: Record) -> int | None:
        value = (job.get("backend_ref") or {}).get("slurm_job_id")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _ref(self, slurm_id: int, job_id: str) -> dict[str, Any]:
        return {"backend": self.name, "slurm_job_id": slurm_id, "name": job_name(job_id),
                "cluster_url": self.settings.slurm.url}

    # --- the Backend contract -----------------------------------------------------------------

    def launch(self, job: Record) -> dict[str, Any]:
        """Submit the batch job; returns {"backend", "slurm_job_id", "name", "cluster_url"}.

        Raises LaunchError("usage") for an unknown app, an app that needs an image nobody
        configured, or a job no node or partition can ever hold; LaunchError("system") when
        slurmrestd is unreachable, refuses for another reason, or the storage cannot presign."""
        spec = self.app_spec(job["app"])
        if spec is None:
            raise LaunchError(f"unknown app {job.get('app')!r}", "usage")
        attempts = int((job.get("dispatch") or {}).get("attempts", 1))
        if attempts > 1 or job.get("backend_ref"):
            existing = self._find(job["id"])
            if existing is not None:
                log.info("Slurm job %s of job %s exists already: launch is a no-op", existing.slurm_id, job["id"])
                return self._ref(existing.slurm_id, job["id"])
        transfer = self._transfer(job)
        try:
            request = build_request(job, spec, self.settings, transfer)
        except ValueError as exc:
            raise LaunchError(str(exc), "usage") from exc
        try:
            answer = self._call("POST", self.api.submit_path(), self.api.submit_body(request))
        except SlurmUnavailable as exc:
            raise LaunchError(str(exc), "system") from exc
        slurm_id = self.api.submitted_id(answer.body)
        if slurm_id is not None:
            # The job exists; errors beside a job id are notes (held, node down, ...), not refusals.
            if self.api.errors(answer.body):
                log.warning("Slurm accepted job %s as %s with: %s", job["id"], slurm_id, self._describe(answer))
            log.info("submitted job %s as Slurm job %s", job["id"], slurm_id)
            return self._ref(slurm_id, job["id"])
        error_class = "usage" if self._codes(answer) & NEVER_FITS else "system"
        raise LaunchError(f"Slurm refused job {job_name(job['id'])}: {self._describe(answer)}", error_class)

    def _transfer(self, job: Record) -> dict[str, Any]:
        try:
            return presigned_transfer(self.storage, job, expires=transfer_expiry(job["timeout"]))
        except Exception as exc:  # noqa: BLE001 - any storage failure: try again later
            raise LaunchError(f"cannot presign the storage URLs of job {job.get('id')}: "
                              f"{type(exc).__name__}: {exc}"[:300], "system") from exc

    def cancel(self, job: Record) -> None:
        """Cancel the Slurm job. Already gone, or already ended, counts as done. Raises
        LaunchError("system") when slurmrestd cannot be asked or refuses, so the caller retries."""
        slurm_id = self._slurm_id(job)
        try:
            if slurm_id is None:
                found = self._find(job["id"])
                if found is None:
                    return  # never submitted
                slurm_id = found.slurm_id
            self._cancel(slurm_id)
        except SlurmUnavailable as exc:
            raise LaunchError(str(exc), "system") from exc
        with self._lock:
            self._vanished.pop(job["id"], None)

    def _cancel(self, slurm_id: int) -> None:
        answer = self._call("DELETE", self.api.job_path(slurm_id))
        codes = self._codes(answer)
        if answer.status == 200 and not self.api.errors(answer.body):
            log.info("cancelled Slurm job %s", slurm_id)
            return
        if codes & {UNKNOWN_JOB, ALREADY_DONE}:
            return
        raise LaunchError(f"cannot cancel Slurm job {slurm_id}: {self._describe(answer)}", "system")

    def poll(self, job: Record) -> PollResult:
        """What slurmctld says about `job` (mapping in status.py, rules in the module docstring)."""
        slurm_id = self._slurm_id(job)
        try:
            if slurm_id is None:  # launched without a recorded reference: look it up by name
                found = self._find(job["id"])
                if found is None:
                    return PollResult("GONE", message=f"no Slurm job named {job_name(job['id'])}",
                                      details={"launched": False})
            else:
                answer = self._call("GET", self.api.job_path(slurm_id))
                jobs = [j for j in self.api.jobs(answer.body) if j.slurm_id == slurm_id]
                if not jobs and UNKNOWN_JOB not in self._codes(answer) and answer.status != 200:
                    return self._unchanged(job, self._describe(answer))
                found = jobs[0] if jobs and job_id_of(jobs[0].name, jobs[0].comment) == job["id"] else None
        except SlurmUnavailable as exc:
            return self._unchanged(job, str(exc))
        except LaunchError as exc:
            return self._unchanged(job, str(exc))
        if found is None:
            return self._vanished_result(job, slurm_id)
        with self._lock:
            self._vanished.pop(job["id"], None)
        result = classify(found)
        if result is None:
            return self._unchanged(job, f"Slurm job {found.slurm_id} is in state {found.state}, unknown here")
        if result.state in ("SUCCESS", "FAILURE", "TIMED-OUT"):
            result.details["products"] = self._products(job)
        return result

    def _products(self, job: Record) -> list[str]:
        """The products the runner uploaded (for a job whose final event never arrived)."""
        prefix = output_prefix(job["owner"], job["id"])
        try:
            names = {info.key[len(prefix):] for info in self.storage.list(prefix)}
        except Exception:  # noqa: BLE001 - the outcome stands without the list
            log.warning("cannot list the products of job %s", job["id"], exc_info=True)
            return []
        return [name for name in PRODUCT_NAMES if name in names]

    def _vanished_result(self, job: Record, slurm_id: int | None) -> PollResult:
        now = self._clock()
        with self._lock:
            since = self._vanished.setdefault(job["id"], now)
        waited = now - since
        grace = self.settings.slurm.lost_grace
        what = f"Slurm job {slurm_id}" if slurm_id is not None else f"Slurm job {job_name(job['id'])}"
        if waited < grace:
            return self._unchanged(job, f"{what} is no longer known to slurmctld; waiting {grace - waited:.0f} s "
                                        "more for the job's final event", vanished=True)
        with self._lock:
            self._vanished.pop(job["id"], None)
        return PollResult("GONE", message=f"{what} vanished from slurmctld without a final status "
                                          f"(lost, or purged after MinJobAge); see {output_file(self.settings, job['id'])}",
                          details={"launched": True, "slurm_job_id": slurm_id})

    def _unchanged(self, job: Record, why: str, *, vanished: bool = False) -> PollResult:
        state = "RUNNING" if job.get("state") == "RUNNING" else "PENDING"
        if not vanished:
            log.warning("slurmrestd problem while polling job %s: %s", job.get("id"), why)
        return PollResult(state, message=f"{why}; state unchanged",
                          details={"transient": True, "error": why, "vanished": vanished})

    # --- lookups -----------------------------------------------------------------------------

    def _list(self) -> list[SlurmJob]:
        """Every caesar job of this service's Slurm user that slurmctld knows. Raises
        SlurmUnavailable or LaunchError("system") when the list cannot be read."""
        answer = self._call("GET", self.api.jobs_path())
        if answer.status != 200:
            raise LaunchError(f"cannot list Slurm jobs: {self._describe(answer)}", "system")
        partition = self.settings.slurm.partition
        return [j for j in self.api.jobs(answer.body)
                if job_id_of(j.name, j.comment) and j.user == self.settings.slurm.user
                and (not partition or j.partition == partition)]

    def _find(self, job_id: str) -> SlurmJob | None:
        """The newest Slurm job of `job_id` (name and comment agree), if slurmctld knows one."""
        try:
            matches = [j for j in self._list() if j.comment == job_id]
        except SlurmUnavailable as exc:
            raise LaunchError(str(exc), "system") from exc
        return max(matches, key=lambda j: j.slurm_id) if matches else None

    def launched_jobs(self) -> list[Record] | None:
        """The caesar jobs that hold or wait for resources in Slurm now, as {"id", "backend_ref"},
        for the monitor's orphan scan; None when it is not time to scan again or Slurm cannot be
        asked (the monitor then skips the scan)."""
        now = self._clock()
        with self._lock:
            if now - self._last_orphan_scan < self.settings.slurm.orphan_interval:
                return None
            self._last_orphan_scan = now
        try:
            live = [j for j in self._list() if j.state in LIVE]
        except (SlurmUnavailable, LaunchError) as exc:
            log.warning("orphan scan skipped: %s", exc)
            return None
        return [{"id": j.comment, "backend_ref": self._ref(j.slurm_id, j.comment)} for j in live]

    def purge(self, job: Record) -> None:
        """The monitor calls this when a job expires: remove Slurm's output file of the job when
        this machine sees the nodes' work folder (a shared file system); else nothing."""
        try:
            Path(output_file(self.settings, job["id"])).unlink(missing_ok=True)
        except (OSError, ValueError):
            pass
