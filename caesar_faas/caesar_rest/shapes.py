"""caesar-rest's JSON shapes, built from our records (pure functions, no I/O).

Where caesar-rest's README and its code disagree the README wins (`exit_status`, `elapsed_time`
as a string, `{"file_ids": [...]}`); keys its code adds that do not conflict are kept too
(`exit_code`, `tag`, the per-item details of the listings). Dates are caesar-rest's
`YYYY-MM-DDTHH:MM:SS.ffffff` without a zone, in UTC. Values that caesar-rest kept as -1 or "0"
before a job ended stay so, so every key always has one type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..apps.spec import AppSpec, OptionSpec
from ..backends.base import handle_of
from ..jobs.records import elapsed_time

MB = 1024 * 1024
UPLOADED = "File uploaded with success"
SUBMITTED = "Job submitted with success"
DELETED = "File deleted and removed from DB"
CANCELED = "Job canceled and status updated in DB"
NO_EXIT = -1  # caesar-rest's exit code of a job that has not ended


def date(epoch: float | None) -> str:
    """caesar-rest's timestamp (datetime.isoformat() of a naive datetime), in UTC; "" for none."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(float(epoch), UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def elapsed(seconds: float | None) -> str:
    """caesar-rest's elapsed_time: seconds as a string ("27.3435878754"); "0" before the start."""
    return "0" if seconds is None else format(float(seconds), ".12g")


def exit_code(job: dict[str, Any]) -> int:
    value = job.get("exit_status")
    return value if isinstance(value, int) and not isinstance(value, bool) else NO_EXIT


def size_mb(size: Any) -> float:
    return float(size or 0) / MB


def upload(record: dict[str, Any]) -> dict[str, Any]:
    """POST /upload: the README's keys plus the code's `tag`."""
    return {"date": date(record.get("created")), "filename_orig": record.get("filename_orig") or "",
            "format": record.get("format") or "", "size": size_mb(record.get("size")), "status": UPLOADED,
            "uuid": record["id"], "tag": record.get("tag") or ""}


def file_entry(record: dict[str, Any]) -> dict[str, Any]:
    """One file of GET /fileids "files": the fields of caesar-rest's code, without server paths."""
    return {"fileid": record["id"], "filename_orig": record.get("filename_orig") or "",
            "fileext": record.get("format") or "", "filesize": size_mb(record.get("size")),
            "filedate": date(record.get("created")), "metadata": "", "tag": record.get("tag") or ""}


def file_ids(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"file_ids": [r["id"] for r in records], "files": [file_entry(r) for r in records]}


def status(job: dict[str, Any], now: float) -> dict[str, Any]:
    """GET /job/<id>/status: the README's keys plus the code's exit_code and tag. `pid` is the
    backend's handle (process id, Kubernetes Job name, Slurm job id)."""
    code = exit_code(job)
    return {"job_id": job["id"], "pid": handle_of(job.get("backend_ref")), "state": job.get("state") or "",
            "status": job.get("status") or "", "exit_status": code, "exit_code": code,
            "elapsed_time": elapsed(elapsed_time(job, now)), "tag": job.get("tag") or ""}


def job_entry(job: dict[str, Any], now: float, scheduler: str) -> dict[str, Any]:
    """One job of GET /jobs "jobs": caesar-rest's job document without its server path."""
    return {"job_id": job["id"], "submit_date": date(job.get("created")), "app": job.get("app") or "",
            "job_inputs": job.get("job_inputs") or {}, "data_inputs": (job.get("input") or {}).get("file_id") or "",
            "metadata": "", "tag": job.get("tag") or "", "scheduler": scheduler, "state": job.get("state") or "",
            "status": job.get("status") or "", "pid": handle_of(job.get("backend_ref")),
            "elapsed_time": elapsed(elapsed_time(job, now)), "exit_code": exit_code(job)}


def job_list(jobs: list[dict[str, Any]], now: float, scheduler: str) -> dict[str, Any]:
    return {"job_ids": [j["id"] for j in jobs], "jobs": [job_entry(j, now, scheduler) for j in jobs]}


def submitted(view: dict[str, Any]) -> dict[str, Any]:
    """POST /job (202), from the library's answer: the README's keys, the code's
    data_inputs/tag/state, and the options that were accepted without effect."""
    return {"app": view["app"], "job_id": view["job_id"], "job_inputs": view.get("job_inputs") or {},
            "data_inputs": view.get("data_inputs") or "", "tag": view.get("tag") or "",
            "state": view["state"], "status": SUBMITTED, "submit_date": date(_epoch(view.get("submit_date"))),
            "ignored_options": list(view.get("ignored_options") or [])}


def submit_refused() -> dict[str, Any]:
    """The keys caesar-rest adds to a refused submission's error body."""
    return {"state": "ABORTED", "job_id": "", "submit_date": ""}


def not_completed(job: dict[str, Any]) -> dict[str, Any]:
    """202 from the output routes while the job has not ended."""
    return {"job_id": job["id"],
            "status": f"Job {job['id']} not yet completed (state={job.get('state')}), output not available"}


def already_completed(job: dict[str, Any]) -> dict[str, Any]:
    return {"status": f"Job {job['id']} already completed with state {job.get('state')}, nothing to be canceled."}


def describe(spec: AppSpec) -> dict[str, dict[str, Any]]:
    """GET /app/<name>/describe: a flat {option: spec} in caesar-rest's three shapes (flag,
    value, enumeration), the input option first as its README shows it (the uuid of an uploaded
    file, or a path ending in <uuid>.<ext>; data_inputs may give it instead)."""
    out = {spec.input_option: {
        "mandatory": True, "type": "str", "advanced": 0, "category": "input", "subcategory": "",
        "description": ("The input image: the uuid of one of your uploaded files, or a path whose "
                        "file name is <uuid>.<ext> (only the uuid is used; the path is never opened). "
                        "May be given as data_inputs instead."),
        "default": "", "min": "", "max": "", "enum": False}}
    for name, opt in spec.options.items():
        out[name] = _option(opt)
    return out


def _option(opt: OptionSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"mandatory": opt.mandatory, "type": opt.type, "description": opt.description,
                             "advanced": int(opt.advanced), "category": opt.category, "subcategory": ""}
    choices = opt.allowed_values if opt.allowed_values is not None else opt.enum
    if opt.type == "none":
        entry.update(default=bool(opt.default), enum=False)
    elif choices is not None:
        entry.update(default=_blank(opt.default), allowed_values=list(choices), enum=True)
    else:
        entry.update(default=_blank(opt.default), min=_blank(opt.min), max=_blank(opt.max), enum=False)
    return entry


def _epoch(iso_date: Any) -> float | None:
    """Epoch seconds of the library's RFC 3339 timestamps."""
    if not isinstance(iso_date, str) or not iso_date:
        return None
    return datetime.fromisoformat(iso_date.replace("Z", "+00:00")).timestamp()


def _blank(value: Any) -> Any:
    """caesar-rest's '' for an unset default or bound."""
    return "" if value is None else value
