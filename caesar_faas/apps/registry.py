"""The app registry: loads the YAML specs in ./specs once, checks them, answers describe.

A malformed spec is a deployment bug, so loading fails loudly (SpecError) instead of serving an
app whose options could not be validated.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Any

import yaml

from .spec import AppSpec, OptionSpec
from .validation import TYPES, OptionError, check_constraints, check_value

SPECS_DIR = Path(__file__).resolve().parent / "specs"

_APP_KEYS = {"name", "description", "version", "input_option", "default_timeout", "local_entry",
             "image", "command", "resources", "shm_size", "work_size", "constraints", "options",
             "components"}
_REQUIRED_APP_KEYS = _APP_KEYS - {"shm_size", "work_size", "constraints", "components"}
_OPTION_KEYS = {"type", "description", "mandatory", "default", "min", "max", "enum",
                "allowed_values", "advanced", "category", "ignored"}
_CONSTRAINT_ARITY = {"le": 2, "requires": 2, "together": None}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_OPTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_MODULE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


class SpecError(ValueError):
    """An app spec file is invalid."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (plain YAML keeps the last one silently)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(k, deep=True) for k, _ in node.value]
    dups = sorted({str(k) for k in keys if keys.count(k) > 1})
    if dups:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {dups}", node.start_mark)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def list_apps() -> list[AppSpec]:
    """Every app, sorted by name."""
    return list(_registry().values())


def get_app(name: str) -> AppSpec | None:
    return _registry().get(name) if isinstance(name, str) else None


def describe(spec: AppSpec) -> dict[str, dict[str, Any]]:
    """The options in caesar-rest's describe format, spec order.

    As in caesar-rest, "enum" is a boolean (the option takes one of "allowed_values") and
    "advanced" is 0/1. The input-image option is not listed: users never give it."""
    out: dict[str, dict[str, Any]] = {}
    for name, opt in spec.options.items():
        choices = opt.allowed_values if opt.allowed_values is not None else opt.enum
        out[name] = {
            "mandatory": opt.mandatory,
            "type": opt.type,
            "description": opt.description,
            "default": opt.default,
            "min": opt.min,
            "max": opt.max,
            "enum": choices is not None,
            "allowed_values": list(choices) if choices is not None else None,
            "advanced": int(opt.advanced),
            "category": opt.category,
        }
    return out


def summary(spec: AppSpec) -> dict[str, Any]:
    """One entry of the app list (GET /function/describe)."""
    return {
        "name": spec.name,
        "description": spec.description,
        "version": spec.version,
        "runs_locally": spec.runs_locally,
        "image": spec.image,
        "default_timeout": spec.default_timeout,
        "noptions": len(spec.options),
    }


def load_spec(path: Path) -> AppSpec:
    """Parse and check one YAML spec file."""
    try:
        raw = yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path.name}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path.name}: top level must be a mapping")
    where = path.name
    _keys(where, raw, _APP_KEYS, _REQUIRED_APP_KEYS)
    name = raw["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name) or path.stem != name:
        raise SpecError(f"{where}: name must match the file name and {_NAME_RE.pattern}")
    for key in ("description", "version", "input_option", "image"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise SpecError(f"{where}: {key} must be a non-empty string")
    if not isinstance(raw["default_timeout"], int) or raw["default_timeout"] <= 0:
        raise SpecError(f"{where}: default_timeout must be a positive integer (seconds)")
    entry = raw["local_entry"]
    if entry is not None and (not isinstance(entry, str) or not _MODULE_RE.match(entry)):
        raise SpecError(f"{where}: local_entry must be null or a module name under runner.finders")
    command = raw["command"]
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise SpecError(f"{where}: command must be a non-empty list of strings")
    resources = _resources(where, raw["resources"])
    for key in ("shm_size", "work_size"):
        if key in raw and not (isinstance(raw[key], str) and _QUANTITY_RE.match(raw[key])):
            raise SpecError(f"{where}: {key} must be a Kubernetes quantity like '1Gi'")

    raw_options = raw["options"]
    if not isinstance(raw_options, dict):
        raise SpecError(f"{where}: options must be a mapping")
    options = {oname: _option(where, oname, odef) for oname, odef in raw_options.items()}
    if raw["input_option"] in options:
        raise SpecError(f"{where}: the input option {raw['input_option']!r} must not be a user option")
    constraints = _constraints(where, raw.get("constraints") or [], options)
    components = _components(where, raw.get("components", False), options)

    extra = {k: raw[k] for k in ("shm_size", "work_size") if k in raw}
    spec = AppSpec(name=name, description=" ".join(raw["description"].split()),
                   version=str(raw["version"]), options=options, input_option=raw["input_option"],
                   default_timeout=raw["default_timeout"], local_entry=entry, image=raw["image"],
                   command=list(command), resources=resources, constraints=constraints,
                   components=components, **extra)
    try:
        # The defaults alone must form a valid job (an empty job_inputs runs with defaults).
        check_constraints(spec, {n: o.default for n, o in options.items()})
    except OptionError as exc:
        raise SpecError(f"{where}: defaults break a constraint: {exc.message}") from exc
    return spec


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, AppSpec]:
    specs = [load_spec(path) for path in sorted(SPECS_DIR.glob("*.yaml"))]
    if not specs:
        raise SpecError(f"no app specs found in {SPECS_DIR}")
    return {spec.name: spec for spec in specs}


def _keys(where: str, raw: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)}")
    missing = required - set(raw)
    if missing:
        raise SpecError(f"{where}: missing keys {sorted(missing)}")


def _resources(where: str, raw: Any) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict) or set(raw) != {"requests", "limits"}:
        raise SpecError(f"{where}: resources must have exactly 'requests' and 'limits'")
    out: dict[str, dict[str, str]] = {}
    for part, values in raw.items():
        if not isinstance(values, dict) or set(values) != {"cpu", "memory"}:
            raise SpecError(f"{where}: resources.{part} must have exactly cpu and memory")
        for key, value in values.items():
            if not isinstance(value, str) or not _QUANTITY_RE.match(value):
                raise SpecError(f"{where}: resources.{part}.{key} must be a quantity string")
        out[part] = dict(values)
    return out


def _option(where: str, name: Any, raw: Any) -> OptionSpec:
    if not isinstance(name, str) or not _OPTION_RE.match(name):
        raise SpecError(f"{where}: bad option name {name!r}")
    where = f"{where}: option {name}"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be a mapping")
    _keys(where, raw, _OPTION_KEYS, {"type", "description"})
    otype = raw["type"]
    if otype not in TYPES:
        raise SpecError(f"{where}: type must be one of {TYPES}")
    if not isinstance(raw["description"], str) or not raw["description"].strip():
        raise SpecError(f"{where}: description must be a non-empty string")
    for key in ("min", "max"):
        value = raw.get(key)
        if value is not None and (otype not in ("int", "float") or isinstance(value, bool)
                                  or not isinstance(value, (int, float))):
            raise SpecError(f"{where}: {key} only applies to int/float options and must be a number")
    if raw.get("min") is not None and raw.get("max") is not None and raw["min"] > raw["max"]:
        raise SpecError(f"{where}: min > max")
    for key in ("enum", "allowed_values"):
        if raw.get(key) is not None and (not isinstance(raw[key], list) or not raw[key]):
            raise SpecError(f"{where}: {key} must be a non-empty list")
    mandatory = raw.get("mandatory", False)
    if not all(isinstance(raw.get(key, False), bool) for key in ("mandatory", "advanced", "ignored")):
        raise SpecError(f"{where}: mandatory, advanced and ignored must be booleans")
    if raw.get("ignored") and mandatory:
        raise SpecError(f"{where}: an ignored option cannot be mandatory")
    default = raw.get("default")
    if otype in ("none", "bool") and default is None:
        default = False  # a flag that is not given is off
    if mandatory and default is not None:
        raise SpecError(f"{where}: a mandatory option cannot have a default")
    opt = OptionSpec(name=name, type=otype, description=" ".join(raw["description"].split()),
                     mandatory=mandatory, default=default, min=raw.get("min"), max=raw.get("max"),
                     enum=raw.get("enum"), allowed_values=raw.get("allowed_values"),
                     advanced=raw.get("advanced", False), category=str(raw.get("category", "run")),
                     ignored=raw.get("ignored", False))
    try:
        # The default and every choice must pass the option's own rules.
        if default is not None:
            check_value(opt, default)
        for choice in (opt.enum or []) + (opt.allowed_values or []):
            check_value(OptionSpec(name=name, type=otype, description="", min=opt.min, max=opt.max),
                        choice)
    except OptionError as exc:
        raise SpecError(f"{where}: default or choice invalid: {exc.message}") from exc
    if otype == "float" and isinstance(default, int):
        opt = dataclasses.replace(opt, default=float(default))
    return opt


def _components(where: str, raw: Any, options: dict[str, OptionSpec]) -> bool | dict[str, Any]:
    """`components`: true/false, or {option: value} naming valid values of existing options."""
    if isinstance(raw, bool):
        return raw
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"{where}: components must be true, false or a mapping of option values")
    for name, value in raw.items():
        if name not in options:
            raise SpecError(f"{where}: components names unknown option {name!r}")
        try:
            check_value(options[name], value)
        except OptionError as exc:
            raise SpecError(f"{where}: components: {exc.message}") from exc
    return dict(raw)


def _constraints(where: str, raw: Any, options: dict[str, OptionSpec]) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise SpecError(f"{where}: constraints must be a list")
    out = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"rule", "options"}:
            raise SpecError(f"{where}: each constraint needs exactly 'rule' and 'options'")
        rule, names = item["rule"], item["options"]
        if rule not in _CONSTRAINT_ARITY:
            raise SpecError(f"{where}: unknown constraint rule {rule!r}")
        arity = _CONSTRAINT_ARITY[rule]
        if not isinstance(names, list) or len(names) < 2 or (arity and len(names) != arity):
            raise SpecError(f"{where}: constraint {rule} has a wrong number of options")
        for n in names:
            if n not in options:
                raise SpecError(f"{where}: constraint {rule} names unknown option {n!r}")
        if rule == "le" and any(options[n].type not in ("int", "float") for n in names):
            raise SpecError(f"{where}: constraint le needs numeric options")
        out.append({"rule": rule, "options": list(names)})
    return out
