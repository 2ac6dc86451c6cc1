"""Human-readable output of the command line: aligned tables and key/value blocks."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    return str(value)


def when(epoch: Any) -> str:
    """An epoch (a JWT's exp) in UTC, ISO 8601."""
    if not isinstance(epoch, (int, float)):
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, wrap_last: bool = False) -> str:
    """Columns padded to their widest cell; with wrap_last the last column is wrapped to the
    terminal's width (descriptions)."""
    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text_rows]) for i, h in enumerate(headers)]
    if wrap_last and headers:
        used = sum(widths[:-1]) + 2 * (len(headers) - 1)
        widths[-1] = max(20, min(widths[-1], shutil.get_terminal_size((120, 24)).columns - used))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in text_rows:
        last = textwrap.wrap(row[-1], widths[-1]) if wrap_last and row[-1] else [row[-1]]
        head = "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=False))
        lines.append((head + ("  " if head else "") + (last[0] if last else "")).rstrip())
        indent = " " * (len(head) + (2 if head else 0))
        lines += [indent + more for more in last[1:]]
    return "\n".join(lines)


def pairs(doc: dict[str, Any], keys: Sequence[str]) -> str:
    shown = [(k, doc.get(k)) for k in keys if k in doc]
    width = max((len(k) for k, _ in shown), default=0)
    return "\n".join(f"{k.ljust(width)}  {cell(v)}" for k, v in shown)


JOB_KEYS = ("job_id", "app", "state", "progress", "status", "exit_status", "error_class", "data_inputs",
            "job_inputs", "tag", "submit_date", "started", "finished", "elapsed_time", "timeout", "products",
            "expires")
FILE_KEYS = ("uuid", "filename_orig", "state", "status", "format", "bytes", "shape", "sha256", "tag", "date")


def job(doc: dict[str, Any]) -> str:
    view = dict(doc)
    if isinstance(view.get("job_inputs"), dict):
        view["job_inputs"] = " ".join(f"{k}={v}" for k, v in view["job_inputs"].items()) or "-"
    if "progress" in view:
        view["progress"] = f"{view['progress']}%"
    return pairs(view, JOB_KEYS)


def jobs(docs: Sequence[dict[str, Any]]) -> str:
    return table(["JOB", "APP", "STATE", "PROGRESS", "SUBMITTED", "TAG"],
                 [[d.get("job_id"), d.get("app"), d.get("state"), f"{d.get('progress', 0)}%", d.get("submit_date"),
                   d.get("tag") or "-"] for d in docs])


def files(docs: Sequence[dict[str, Any]]) -> str:
    return table(["FILE", "NAME", "STATE", "SIZE (MB)", "DATE", "TAG"],
                 [[d.get("uuid"), d.get("filename_orig"), d.get("state"), f"{d.get('size') or 0:.3f}",
                   d.get("date"), d.get("tag") or "-"] for d in docs])


def file(doc: dict[str, Any]) -> str:
    return pairs(doc, FILE_KEYS)


def choices(opt: dict[str, Any]) -> str:
    allowed = opt.get("allowed_values")
    if isinstance(opt.get("enum"), list) and not allowed:
        allowed = opt["enum"]
    if allowed:
        return "{" + ", ".join(cell(v) for v in allowed) + "}"
    low, high = opt.get("min"), opt.get("max")
    if low is None and high is None:
        return "-"
    return f"[{cell(low) if low is not None else ''}, {cell(high) if high is not None else ''}]"


def describe(app: str, options: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, opt in options.items():
        mark = " *" if opt.get("mandatory") else ""
        rows.append([name + mark, opt.get("type"), cell(opt.get("default")), choices(opt),
                     " ".join(str(opt.get("description") or "").split())])
    note = "\n(* mandatory)" if any(o.get("mandatory") for o in options.values()) else ""
    return f"{app}: {len(options)} options\n" + table(["OPTION", "TYPE", "DEFAULT", "RANGE/CHOICES", "DESCRIPTION"],
                                                      rows, wrap_last=True) + note
