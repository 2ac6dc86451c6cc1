"""The shapes of one slurmrestd API version, so that a newer version is one more class here.

Only v0.0.38 (Slurm 22.05, Debian 12's slurmrestd) exists. What it does, measured against
Debian's 22.05.8 (tests/test_slurm_backend.py exercises each point on a real cluster):

- POST /slurm/v0.0.38/job/submit {"script": ..., "job": {...}}: `job.environment` is required
  and must be an object; unknown keys answer 400; `time_limit` is in minutes;
  `memory_per_node` in MB. `requeue` is an sbatch-style flag: `"requeue": false` still turns
  requeueing ON; `"no_requeue": true` turns it off. `argv` crashes slurmrestd 22.05.8, so the
  script carries the runner's argv itself (job.py).
- Every answer carries an `errors` array, also with HTTP 200 and a job id (a held job, for
  example): read it always. Its items name their code `error_number` or `error_code`.
- GET /slurm/v0.0.38/job/<id> answers {"jobs": [...]}; an id slurmctld does not know (never
  issued, or purged MinJobAge seconds after the job ended) answers 500 with error 2017.
- A bad or expired token answers 500 (error -1), not 401; no token at all answers 401.
- `exit_code` is the raw wait status: exit 3 -> 768, killed by signal 15 -> 15.
- `job_state` is one word; with a flag set it names the flag (COMPLETING, CONFIGURING, ...).
- DELETE /slurm/v0.0.38/job/<id> cancels like scancel (SIGTERM, KillWait, then SIGKILL).

What v0.0.39+ changed, for whoever adds it: job_state becomes a list, exit_code an object
{status, return_code}, numbers like time_limit become {set, infinite, number}, environment a
list of "NAME=value" strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UNKNOWN_JOB = 2017  # ESLURM_INVALID_JOB_ID: never issued, or purged after MinJobAge
ALREADY_DONE = 2021  # ESLURM_ALREADY_DONE: cancelling a job that already ended


@dataclass(frozen=True)
class SubmitRequest:
    """A batch job, independent of the API version."""

    name: str
    comment: str
    script: str
    environment: dict[str, str]
    workdir: str  # the batch script's working directory (must exist on the node)
    stdout: str  # stdout and stderr of the batch script
    time_limit: int  # minutes
    cpus: int
    memory_mb: int
    partition: str | None = None
    account: str | None = None
    qos: str | None = None


@dataclass(frozen=True)
class SlurmError:
    number: int | None
    message: str


@dataclass(frozen=True)
class SlurmJob:
    """What the backend needs to know about one Slurm job."""

    slurm_id: int
    name: str
    comment: str
    user: str
    partition: str
    state: str  # PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, TIMEOUT, CANCELLED, ...
    reason: str  # Slurm's state_reason (NonZeroExitCode, TimeLimit, NodeDown, ...)
    exit_code: int | None  # the process's exit code; 128 + N when killed by signal N
    signal: int | None  # the signal that killed it, if one did
    start_time: float | None
    end_time: float | None


def decode_wait_status(raw: int) -> tuple[int, int | None]:
    """(exit code, signal) of a raw wait status; a signal N gives the shell's 128 + N."""
    signal = raw & 0x7F
    if signal:
        return 128 + signal, signal
    return (raw >> 8) & 0xFF, None


class ApiVersion:
    """One slurmrestd API version: paths, the submit body, and reading answers."""

    version = ""

    def submit_path(self) -> str:
        return f"/slurm/{self.version}/job/submit"

    def job_path(self, slurm_id: int) -> str:
        return f"/slurm/{self.version}/job/{int(slurm_id)}"

    def jobs_path(self) -> str:
        return f"/slurm/{self.version}/jobs"

    def submit_body(self, request: SubmitRequest) -> dict[str, Any]:
        raise NotImplementedError

    def errors(self, body: dict[str, Any]) -> list[SlurmError]:
        raise NotImplementedError

    def submitted_id(self, body: dict[str, Any]) -> int | None:
        raise NotImplementedError

    def jobs(self, body: dict[str, Any]) -> list[SlurmJob]:
        raise NotImplementedError


class V0038(ApiVersion):
    version = "v0.0.38"

    def submit_body(self, request: SubmitRequest) -> dict[str, Any]:
        job: dict[str, Any] = {
            "name": request.name,
            "comment": request.comment,
            "environment": dict(request.environment),
            "current_working_directory": request.workdir,
            "standard_output": request.stdout,
            "standard_error": request.stdout,
            "time_limit": int(request.time_limit),
            "nodes": [1, 1],
            "tasks": 1,
            "cpus_per_task": int(request.cpus),
            "memory_per_node": int(request.memory_mb),
            "no_requeue": True,  # a lost node is a FAILURE (system), never a silent second run
        }
        for key, value in (("partition", request.partition), ("account", request.account),
                           ("qos", request.qos)):
            if value:
                job[key] = value
        return {"script": request.script, "job": job}

    def errors(self, body: dict[str, Any]) -> list[SlurmError]:
        found = []
        for item in body.get("errors") or []:
            if not isinstance(item, dict):
                continue
            number = item.get("error_number", item.get("error_code"))
            text = " / ".join(str(item[k]) for k in ("error", "description") if item.get(k))
            found.append(SlurmError(number if isinstance(number, int) else None, text[:300]))
        return found

    def submitted_id(self, body: dict[str, Any]) -> int | None:
        value = body.get("job_id")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    def jobs(self, body: dict[str, Any]) -> list[SlurmJob]:
        return [job for raw in body.get("jobs") or [] if isinstance(raw, dict)
                if (job := self._job(raw)) is not None]

    @staticmethod
    def _job(raw: dict[str, Any]) -> SlurmJob | None:
        slurm_id = raw.get("job_id")
        if not isinstance(slurm_id, int):
            return None
        code = signal = None
        if isinstance(raw.get("exit_code"), int):
            code, signal = decode_wait_status(raw["exit_code"])

        def epoch(key: str) -> float | None:
            value = raw.get(key)
            return float(value) if isinstance(value, int) and value > 0 else None

        return SlurmJob(slurm_id=slurm_id, name=str(raw.get("name") or ""), comment=str(raw.get("comment") or ""),
                        user=str(raw.get("user_name") or ""), partition=str(raw.get("partition") or ""),
                        state=str(raw.get("job_state") or "").upper(), reason=str(raw.get("state_reason") or ""),
                        exit_code=code, signal=signal, start_time=epoch("start_time"), end_time=epoch("end_time"))


VERSIONS: dict[str, type[ApiVersion]] = {V0038.version: V0038}


def api_for(version: str) -> ApiVersion:
    """The shapes of `version` (CAESAR_SLURM_API); ValueError for one not written yet."""
    try:
        return VERSIONS[version]()
    except KeyError:
        raise ValueError(f"CAESAR_SLURM_API {version!r} is not supported; known: {sorted(VERSIONS)}") from None
