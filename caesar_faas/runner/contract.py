"""The environment contract between a backend and the runner (ARCHITECTURE §6).

Both backends start `python -m caesar_faas.runner` with exactly these variables, so the runner
behaves the same in a local subprocess and in a Kubernetes Job:

CAESAR_JOB          JSON: {"id", "owner", "app", "options" (validated, defaults filled),
                    "input": {"file_id", "key", "filename"}, "output_prefix" ("jobs/<owner>/<id>/"),
                    "timeout" (s), "submitted" (epoch s), and optionally "transfer" (below)}
CAESAR_STORAGE_URL  where the input is read and the products written; absent when CAESAR_JOB
                    has "transfer"
CAESAR_NATS_URL     where status events go (subject caesar.jobs.status); no credentials in it
CAESAR_NATS_TOKEN   the NATS client token (a Kubernetes Job reads it from the runner Secret)
CAESAR_WORKDIR      the job's private work folder (logs, temp files, products before upload)
CAESAR_JOB_KEY      this job's key (jobs/status_auth.py): each status event's data carries "sig",
                    an HMAC of the data with it; the dispatcher applies only events signed so
CAESAR_REQUEST_ID   (optional) the request id of the submission, for the logs and status events
plus thread pinning for the finders' numeric libraries, a headless matplotlib, HOME and TMPDIR
inside the work folder.

"transfer" (the Kubernetes backend; jobs/transfer.py builds it):
  {"input_url": a presigned GET of input.key,
   "product_urls": {name: a presigned PUT of output_prefix + name, for every name in PRODUCT_NAMES}}
With it the runner holds no storage credentials at all: it GETs the input from input_url
(streamed; a gzip input is recognised by its bytes, as always) and PUTs each product it writes to its URL (streamed
from the file, with Content-Length). The URLs are bearer credentials for exactly this job's input
and products, valid for the job's lifetime; the runner never logs them.

Status events (CloudEvents on caesar.jobs.status, event id "<job id>-<seq>"), data:
{"job_id", "owner", "seq", "phase": "started" | "progress" | "finished", "progress" (0-100),
 "message", and for "finished": "state" (SUCCESS | FAILURE | TIMED-OUT), "exit_code",
 "elapsed" (s), "cpu_seconds", "error_class" (null | usage | system | timeout), "products" (names)}.
The runner also writes the finished data to <CAESAR_WORKDIR>/result.json before it exits, so a
backend can learn the outcome even when the event was lost.
Exit status (runner/outcome.py): the finder's code, 0 on success; 1 or 2 = usage; 124 = timeout;
70 = the runner's own failure; other codes and signals = system. SIGTERM means cancel: the runner
kills the finder and its children and exits 143 with neither a finished event nor result.json.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import Settings
from ..jobs.status_auth import job_key
from ..store.base import Record

THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
    "PYTHONUNBUFFERED": "1",
}

RESULT_FILE = "result.json"

# Every product a job can leave under its output prefix, in the order the runner uploads them
# (runner/products.py); a backend that presigns uploads makes one PUT URL for each.
CATALOG_CSV = "catalog.csv"
CATALOG_VOT = "catalog.vot"
CATALOG_JSON = "catalog.json"
REGIONS = "sources.reg"
PREVIEW = "preview.png"
JOB_LOG = "job.log"
MANIFEST = "manifest.json"
# FITS maps a finder computes (aegean/BANE and pybdsf: background and rms; pybdsf: residual),
# on the input's pixel grid with its WCS (catalog/fitsmaps.py).
BACKGROUND_MAP = "background.fits"
RMS_MAP = "rms.fits"
RESIDUAL_MAP = "residual.fits"
MAP_NAMES = (BACKGROUND_MAP, RMS_MAP, RESIDUAL_MAP)
PRODUCT_NAMES = (CATALOG_CSV, CATALOG_VOT, CATALOG_JSON, REGIONS, PREVIEW, *MAP_NAMES, JOB_LOG, MANIFEST)
# What every successful job leaves, whatever its finder (the maps depend on the finder).
COMMON_PRODUCTS = tuple(name for name in PRODUCT_NAMES if name not in MAP_NAMES)


def job_document(job: Record, transfer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of a job record the runner needs (no store internals), plus the presigned
    `transfer` URLs when the backend gives them."""
    doc: dict[str, Any] = {
        "id": job["id"],
        "owner": job["owner"],
        "app": job["app"],
        "options": job.get("options", {}),
        "input": job["input"],
        "output_prefix": output_prefix(job["owner"], job["id"]),
        "timeout": job["timeout"],
        "submitted": job["created"],
    }
    if transfer is not None:
        doc["transfer"] = transfer
    return doc


def output_prefix(owner: str, job_id: str) -> str:
    return f"jobs/{owner}/{job_id}/"


def runner_env(job: Record, settings: Settings, workdir: str, *,
               transfer: dict[str, Any] | None = None) -> dict[str, str]:
    """Variables for the runner process; the backend adds PATH etc. (local) or secret refs (k8s).
    With `transfer` the runner moves its data through those URLs and gets no CAESAR_STORAGE_URL."""
    env = dict(THREAD_ENV)
    env.update({
        "CAESAR_JOB": json.dumps(job_document(job, transfer), sort_keys=True),
        "CAESAR_NATS_URL": settings.nats_url,
        "CAESAR_JOB_KEY": job_key(settings, job["id"]),
        "CAESAR_WORKDIR": workdir,
        "HOME": workdir,
        "TMPDIR": f"{workdir}/tmp",
    })
    if settings.nats_token:
        env["CAESAR_NATS_TOKEN"] = settings.nats_token
    if transfer is None:
        env["CAESAR_STORAGE_URL"] = settings.storage_url
    if job.get("request_id"):  # the submit's request id: the runner's log lines and events carry it
        env["CAESAR_REQUEST_ID"] = str(job["request_id"])
    return env
