"""Reading stack.yml the way faas-cli does, for the local gateway, the connector and cron."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(text: str, env: Mapping[str, str] | None = None) -> str:
    """faas-cli's ${VAR} and ${VAR:-default} substitution."""
    values: Mapping[str, str] = os.environ if env is None else env
    return _VAR.sub(lambda m: values.get(m.group(1)) or (m.group(2) or ""), text)


@dataclass(frozen=True)
class Binding:
    function: str
    subject: str
    max_deliver: int
    ack_wait: float  # seconds


@dataclass(frozen=True)
class Schedule:
    function: str
    cron: str


@dataclass
class FunctionDef:
    name: str
    handler: Path
    lang: str
    annotations: dict[str, str] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stack:
    root: Path
    functions: dict[str, FunctionDef]
    copy: list[str]

    def bindings(self) -> list[Binding]:
        out = []
        for fn in self.functions.values():
            topics = fn.annotations.get("topic", "")
            for subject in [t.strip() for t in topics.split(",") if t.strip()]:
                if subject == "cron-function":
                    continue
                out.append(Binding(fn.name, subject, int(fn.annotations.get("caesar.io/max-deliver", "5")),
                                   parse_duration(fn.annotations.get("caesar.io/ack-wait", "30s"))))
        return out

    def schedules(self) -> list[Schedule]:
        return [Schedule(fn.name, fn.annotations["schedule"]) for fn in self.functions.values()
                if fn.annotations.get("topic") == "cron-function" and fn.annotations.get("schedule")]


def parse_duration(text: str) -> float:
    """Go-style durations as used in OpenFaaS settings: 500ms, 30s, 15m, 1h."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(text).strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}")
    value = float(match.group(1))
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def default_stack_path() -> Path:
    return Path(os.environ.get("CAESAR_STACK", Path(__file__).resolve().parents[2] / "stack.yml"))


def load_stack(path: Path | None = None) -> Stack:
    path = Path(path or default_stack_path()).resolve()
    doc = yaml.safe_load(substitute(path.read_text()))
    functions = {}
    for name, spec in (doc.get("functions") or {}).items():
        functions[name] = FunctionDef(
            name=name,
            handler=(path.parent / spec["handler"]).resolve(),
            lang=spec.get("lang", ""),
            annotations={k: str(v) for k, v in (spec.get("annotations") or {}).items()},
            environment=dict(spec.get("environment") or {}),
        )
    copy = list((doc.get("configuration") or {}).get("copy") or [])
    return Stack(root=path.parent, functions=functions, copy=copy)
