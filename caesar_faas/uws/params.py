"""UWS job parameters (form fields) -> a native submission for jobs/submit.py.

Names are case-insensitive (UWS 1.1 §2.2.3.2 follows DALI here): `SeedClip`, `seedclip` and
`SEEDCLIP` are the same option. Values arrive as text and are read strictly by the option's type
in the app spec (an int option takes "6", not "6.5" or "six"), then validated exactly as a native
submission (ranges, enums, mandatory, cross-option rules), so every refusal is a 400 naming the
parameter. Reserved names: PHASE (RUN only), RUNID (the native `tag`), EXECUTIONDURATION (the
native `timeout`, seconds; 0 = as long as the caller may), DESTRUCTION (ISO 8601), INPUTFILE (a
file id of the caller's or an http(s) URL). Any other name that is not an option of the app is a
400: nothing is silently ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..apps.spec import AppSpec
from ..errors import BadRequest

INPUTFILE = "inputfile"
RESERVED = ("phase", "runid", "executionduration", "destruction", INPUTFILE)
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TRUE, _FALSE = ("true", "t", "yes", "1"), ("false", "f", "no", "0")
MAX_RUNID = 128


@dataclass
class Submission:
    """What a UWS creation request asks for, typed."""

    options: dict[str, Any] = field(default_factory=dict)
    inputfile: str | None = None
    run: bool = False
    runid: str | None = None
    execution_duration: int | None = None
    destruction: float | None = None


def bad(name: str, message: str) -> BadRequest:
    return BadRequest(f"parameter {name}: {message}", code="invalid_parameter", option=name)


def unique(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """{lower-case name: (name as given, value)}; a name given twice is a 400."""
    out: dict[str, tuple[str, str]] = {}
    for name, value in pairs:
        key = name.strip().lower()
        if not key:
            continue
        if key in out:
            raise bad(name, "is given more than once")
        out[key] = (name, value)
    return out


def typed(spec: AppSpec, option: str, given: str, text: str) -> Any:
    """The text of a form field as the option's type, or a 400 naming the parameter."""
    kind = spec.options[option].type
    value = text.strip()
    if kind in ("none", "bool"):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise bad(given, f"must be true or false, got {text!r}")
    if kind == "int":
        if not _INT.match(value):
            raise bad(given, f"must be an integer, got {text!r}")
        return int(value)
    if kind == "float":
        if not _FLOAT.match(value) or not math.isfinite(float(value)):
            raise bad(given, f"must be a finite number, got {text!r}")
        return float(value)
    return text  # str: as given (validation refuses line breaks and NUL)


def parse_duration(given: str, text: str) -> int:
    value = text.strip()
    if not _INT.match(value) or int(value) < 0:
        raise bad(given, f"must be a whole number of seconds >= 0, got {text!r}")
    return int(value)


def parse_time(given: str, text: str) -> float:
    """An ISO 8601 instant (UTC when no offset is given) as epoch seconds."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise bad(given, f"must be an ISO 8601 date and time, got {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def creation(spec: AppSpec, pairs: Iterable[tuple[str, str]]) -> Submission:
    """The submission a job-creation POST describes (no store access: checks of files,
    quotas and option ranges come after, in jobs/submit.py)."""
    fields = unique(pairs)
    names = {name.lower(): name for name in spec.options}
    out = Submission()
    for key, (given, text) in fields.items():
        if key == "phase":
            if text.strip().upper() != "RUN":
                raise bad(given, f"at creation only PHASE=RUN is accepted, got {text!r}")
            out.run = True
        elif key == "runid":
            if len(text) > MAX_RUNID or any(ord(c) < 32 for c in text):
                raise bad(given, f"must be at most {MAX_RUNID} printable characters")
            out.runid = text
        elif key == "executionduration":
            out.execution_duration = parse_duration(given, text)
        elif key == "destruction":
            out.destruction = parse_time(given, text)
        elif key == INPUTFILE:
            if not text.strip():
                raise bad(given, "must be a file id or an http(s) URL")
            out.inputfile = text.strip()
        elif key in names:
            if key == spec.input_option.lower():
                raise bad(given, f"is the input image: give it as {INPUTFILE} (a file id or a URL)")
            out.options[names[key]] = typed(spec, names[key], given, text)
        else:
            raise bad(given, f"is not a parameter of app {spec.name!r} (see /function/describe/{spec.name})")
    if out.inputfile is None:
        raise bad(INPUTFILE, "is required: the id of an uploaded FITS image, or an http(s) URL of one")
    return out


def form_value(pairs: Iterable[tuple[str, str]], name: str) -> tuple[str, str] | None:
    """(name as given, value) of one case-insensitive parameter, or None."""
    return unique(pairs).get(name.lower())


def render(value: Any) -> str:
    """A parameter value as UWS text (booleans in XML Schema's spelling)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
