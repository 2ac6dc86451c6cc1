"""Strict validation of job options against an app spec (ARCHITECTURE §7).

caesar-rest cast wrong types silently and ignored unknown options; here every deviation is a 400
that names the option, and nothing is guessed:

- unknown option, or the input-image option (the runner sets it from data_inputs; the submit code
  removes caesar-rest's `inputfile` key from job_inputs before calling us, so any input option
  still present here was given on purpose and is refused);
- wrong type, with no casts: bool is not int, "3" is not int, 3.0 is not int; an int IS accepted
  for a float (and returned as a float); NaN and infinities are refused; type "none" is a flag
  that takes true or false only;
- outside min/max; not in enum/allowed_values;
- strings longer than 1024 characters or holding NUL, CR or LF (they end up as argv elements or
  in config files of the finders: one line, no terminator tricks);
- mandatory option missing; null for an option that has a non-null default;
- the spec's cross-option constraints (e.g. floodclip <= seedclip).

The result holds every option of the spec in spec order, defaults filled, so the runner never has
to know the defaults. Options the spec marks `ignored` (accepted for caesar-rest scripts, without
effect here) are checked like the others; `effective` leaves them out of what a job runs with.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import BadRequest
from .spec import AppSpec, OptionSpec

MAX_STR_LEN = 1024
FORBIDDEN_CHARS = ("\x00", "\n", "\r")
TYPES = ("none", "int", "float", "str", "bool")


class OptionError(BadRequest):
    """A job option is invalid. The JSON body names it: {"error": "invalid_option", "option": ...}."""

    code = "invalid_option"

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"option '{option}': {message}", option=option)
        self.option = option


def check_value(opt: OptionSpec, value: Any) -> Any:
    """Return `value` if it is valid for `opt` (ints widened to float for float options), else
    raise OptionError. `None` is not handled here (see validate_options)."""
    name = opt.name
    if opt.type in ("none", "bool"):
        if not isinstance(value, bool):
            raise OptionError(name, f"must be true or false, got {_kind(value)}")
    elif opt.type == "int":
        # bool is a subclass of int in Python: refuse it explicitly.
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError(name, f"must be an integer, got {_kind(value)}")
    elif opt.type == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionError(name, f"must be a number, got {_kind(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise OptionError(name, "must be a finite number")
    elif opt.type == "str":
        if not isinstance(value, str):
            raise OptionError(name, f"must be a string, got {_kind(value)}")
        if len(value) > MAX_STR_LEN:
            raise OptionError(name, f"must be at most {MAX_STR_LEN} characters long")
        if any(ch in value for ch in FORBIDDEN_CHARS):
            raise OptionError(name, "must not contain NUL or line breaks")
    else:  # a spec bug, caught when specs load; kept so a bad spec can never pass values through
        raise OptionError(name, f"has an unknown type {opt.type!r} in the app spec")

    numeric = opt.type in ("int", "float")
    if numeric and opt.min is not None and value < opt.min:
        raise OptionError(name, f"must be >= {_num(opt.min)}, got {_num(value)}")
    if numeric and opt.max is not None and value > opt.max:
        raise OptionError(name, f"must be <= {_num(opt.max)}, got {_num(value)}")
    for choices in (opt.enum, opt.allowed_values):
        if choices is not None and not _one_of(value, choices):
            shown = ", ".join(repr(c) for c in choices)
            raise OptionError(name, f"must be one of {shown}, got {value!r}")
    return value


def validate_options(spec: AppSpec, job_inputs: Any) -> dict[str, Any]:
    """Check `job_inputs` against `spec`; return all options (spec order) with defaults filled.

    Raises OptionError (a 400 BadRequest with code "invalid_option" and the option name)."""
    if job_inputs is None:
        job_inputs = {}
    if not isinstance(job_inputs, dict):
        raise OptionError("job_inputs", f"must be a JSON object, got {_kind(job_inputs)}")
    for key in sorted(job_inputs, key=str):
        if not isinstance(key, str):
            raise OptionError(str(key), "option names must be strings")
        if key == spec.input_option:
            raise OptionError(key, "is the input image: it is set from data_inputs, do not give it")
        if key not in spec.options:
            raise OptionError(key, f"is not an option of app '{spec.name}'")

    result: dict[str, Any] = {}
    for name, opt in spec.options.items():
        given = name in job_inputs
        value = job_inputs.get(name)
        if not given:
            if opt.mandatory:
                raise OptionError(name, "is mandatory")
            result[name] = opt.default
            continue
        if value is None:
            # null means "leave it unset", which only makes sense when unset is the default.
            if opt.mandatory or opt.default is not None:
                raise OptionError(name, "must not be null")
            result[name] = None
            continue
        result[name] = check_value(opt, value)

    check_constraints(spec, result)
    return result


def effective(spec: AppSpec, options: dict[str, Any]) -> dict[str, Any]:
    """The validated options without the ignored ones: what the finder may see."""
    return {name: value for name, value in options.items() if not spec.options[name].ignored}


def ignored_given(spec: AppSpec, job_inputs: Any) -> list[str]:
    """The options in `job_inputs` that the spec accepts without effect, sorted by name."""
    if not isinstance(job_inputs, dict):
        return []
    return sorted(name for name in job_inputs if isinstance(name, str) and name in spec.options
                  and spec.options[name].ignored)


def check_constraints(spec: AppSpec, values: dict[str, Any]) -> None:
    """Apply the spec's cross-option rules to a full option set."""
    for rule in spec.constraints:
        kind, names = rule["rule"], rule["options"]
        if kind == "le":
            a, b = names
            if values.get(a) is not None and values.get(b) is not None and values[a] > values[b]:
                raise OptionError(a, f"must be <= {b} ({_num(values[b])}), got {_num(values[a])}")
        elif kind == "together":
            set_names = [n for n in names if values.get(n) is not None]
            if set_names and len(set_names) != len(names):
                missing = next(n for n in names if values.get(n) is None)
                raise OptionError(missing, f"must be given together with {', '.join(set_names)}")
        elif kind == "requires":
            a, b = names
            if values.get(a) is not None and values.get(b) is None:
                raise OptionError(a, f"needs option '{b}' to be set too")
        else:
            raise ValueError(f"app {spec.name}: unknown constraint rule {kind!r}")


def _one_of(value: Any, choices: list[Any]) -> bool:
    # `True in [1]` is true in Python: compare types too so an enum of ints never takes a bool.
    return any(type(value) is type(c) and value == c for c in choices) or (
        isinstance(value, float) and any(type(c) is int and value == c for c in choices))


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _num(value: Any) -> str:
    return repr(value) if isinstance(value, (int, float)) else str(value)
