"""The Slurm batch job that runs one caesar job: script, environment, resources (pure functions).

- Named `caesar-<job id>` with the job id as its comment, so a repeated launch and the orphan
  scan find it without the store.
- The batch script is fixed text; the only variable part is the runner's argv, which comes
  from the operator's configuration and the app registry (never from a request) and is written
  with every word quoted (shlex.quote). User options travel only inside CAESAR_JOB, an
  environment value the script never expands.
- The environment is built from nothing: the runner contract (runner/contract.py) with the
  presigned, job-scoped transfer URLs and the job's own status-signing key, PATH and the locale.
  No storage URL, no storage keys, no service secrets: a job's environment is readable by the
  Slurm user and the cluster's admins. NATS gets the nodes' own token (CAESAR_SLURM_NATS_TOKEN),
  never the service's.
- The work folder is CAESAR_SLURM_WORKDIR/<job id> (created by the script, removed when the runner
  ends: the products are uploaded by then); Slurm's output file, which holds the runner's log,
  stays beside it as CAESAR_SLURM_WORKDIR/caesar-<job id>.out.
- Time limit: the job timeout plus CAESAR_SLURM_TIME_MARGIN, in whole minutes (Slurm's unit),
  so the runner's own deadline normally ends the job first, with its log and a TIMED-OUT event;
  Slurm's limit is the backstop. CPUs and memory: the app spec's limits (else its requests).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from ...apps.spec import AppSpec
from ...config import Settings
from ...ids import is_id
from ...jobs.transfer import FORBIDDEN_ENV
from ...runner.contract import runner_env
from ...store.base import Record
from .api import SubmitRequest

NAME_PREFIX = "caesar-"
CONTAINER_TOOLS = ("apptainer", "singularity")
# "caesar_faas", or "function.caesar_faas" inside an OpenFaaS image.
PACKAGE = __name__.rsplit(".backends.", 1)[0]
# The folder that holds the package: on PYTHONPATH, `-m <PACKAGE>.runner` imports this same code.
IMPORT_ROOT = Path(__file__).resolve().parents[len(PACKAGE.split(".")) + 2]
PASS_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

SCRIPT_HEAD = """#!/bin/sh
# caesar-faas runner job. This text is fixed: only the runner's argv (the operator's
# configuration) follows, each word quoted. The job itself is described by CAESAR_JOB.
[ -n "$CAESAR_WORKDIR" ] || exit 70
mkdir -p -- "$CAESAR_WORKDIR/tmp" || exit 70
cd -- "$CAESAR_WORKDIR" || exit 70
# The work folder is scratch: the products are uploaded before the runner exits.
trap 'cd / && rm -rf -- "$CAESAR_WORKDIR"' EXIT
# scancel and the time limit signal every process of the job: wait for the runner, then leave.
trap 'exit 143' TERM
"""

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGTPE]i?|m)?$")
_FACTORS = {None: 1, "m": 1e-3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}


def job_name(job_id: str) -> str:
    return NAME_PREFIX + job_id


def job_id_of(name: str, comment: str) -> str | None:
    """The caesar job id of a Slurm job this service submitted (name and comment agree), else None."""
    if name.startswith(NAME_PREFIX) and name[len(NAME_PREFIX):] == comment and is_id(comment):
        return comment
    return None


def quantity(value: str) -> float:
    """A Kubernetes quantity ("3Gi", "500m", "2") as a number (bytes, cores)."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"not a resource quantity: {value!r}")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def _resource(spec: AppSpec, name: str) -> str | None:
    for section in ("limits", "requests"):
        value = ((spec.resources or {}).get(section) or {}).get(name)
        if value is not None:
            return str(value)
    return None


def cpus(spec: AppSpec) -> int:
    value = _resource(spec, "cpu")
    return max(1, math.ceil(quantity(value))) if value else 1


def memory_mb(spec: AppSpec) -> int:
    """MiB, what Slurm calls MB."""
    value = _resource(spec, "memory")
    return max(1, math.ceil(quantity(value) / 2 ** 20)) if value else 1024


def time_limit(timeout: float, margin: int) -> int:
    """Whole minutes covering timeout + margin seconds (at least one)."""
    return max(1, math.ceil((max(0.0, float(timeout)) + max(0, margin)) / 60))


def runner_argv(spec: AppSpec, settings: Settings) -> list[str]:
    """The command that starts the runner on the node. Raises ValueError when the app needs its
    container image and no image folder is configured (the job can never run here)."""
    slurm = settings.slurm
    configured = shlex.split(slurm.runner) if slurm.runner else []
    tool = configured[0] if configured and Path(configured[0]).name in CONTAINER_TOOLS else None
    if tool is None and spec.runs_locally:
        return configured or [sys.executable, "-m", f"{PACKAGE}.runner"]
    if not slurm.image_dir:
        raise ValueError(f"app {spec.name!r} runs from its container image: set CAESAR_SLURM_IMAGE_DIR "
                         "to the folder of the <app>.sif images")
    image = f"{slurm.image_dir.rstrip('/')}/{spec.name}.sif"
    return [tool or CONTAINER_TOOLS[0], "exec", image, *spec.command]


def batch_script(argv: list[str]) -> str:
    if not argv or not all(isinstance(word, str) and word for word in argv):
        raise ValueError("the runner command must be a non-empty list of non-empty words")
    return SCRIPT_HEAD + " ".join(shlex.quote(word) for word in argv) + "\n"


def work_folder(settings: Settings, job_id: str) -> str:
    if not is_id(job_id):  # the id becomes a path on the nodes
        raise ValueError(f"invalid job id {job_id!r}")
    return f"{settings.slurm.workdir.rstrip('/')}/{job_id}"


def output_file(settings: Settings, job_id: str) -> str:
    return f"{settings.slurm.workdir.rstrip('/')}/{job_name(job_id)}.out"


def environment(job: Record, settings: Settings, transfer: dict[str, Any], *,
                python_path: bool) -> dict[str, str]:
    """The job's whole environment (Slurm adds its SLURM_* variables)."""
    env = {name: os.environ[name] for name in PASS_ENV if os.environ.get(name)}
    env.setdefault("PATH", DEFAULT_PATH)
    if python_path:
        env["PYTHONPATH"] = str(IMPORT_ROOT)
    env.update(runner_env(job, settings, work_folder(settings, job["id"]), transfer=transfer))
    if settings.slurm.nats_url:
        env["CAESAR_NATS_URL"] = settings.slurm.nats_url
    # The service's NATS token is not the nodes': a job's environment is readable on the cluster.
    env.pop("CAESAR_NATS_TOKEN", None)
    if settings.slurm.nats_token:
        env["CAESAR_NATS_TOKEN"] = settings.slurm.nats_token
    for name in FORBIDDEN_ENV:
        if name in env:
            raise ValueError(f"{name} must not reach a Slurm job")  # a contract change gone wrong
    return env


def build_request(job: Record, spec: AppSpec, settings: Settings, transfer: dict[str, Any]) -> SubmitRequest:
    """The batch job for `job` (a store record) running app `spec`; `transfer` holds the job's
    presigned URLs (jobs/transfer.presigned_transfer). Raises ValueError when it cannot run."""
    argv = runner_argv(spec, settings)
    in_container = Path(argv[0]).name in CONTAINER_TOOLS
    slurm = settings.slurm
    return SubmitRequest(
        name=job_name(job["id"]), comment=job["id"], script=batch_script(argv),
        environment=environment(job, settings, transfer, python_path=not in_container),
        workdir=slurm.workdir, stdout=output_file(settings, job["id"]),
        time_limit=time_limit(job["timeout"], slurm.time_margin), cpus=cpus(spec), memory_mb=memory_mb(spec),
        partition=slurm.partition, account=slurm.account, qos=slurm.qos)
