"""`-p NAME=VALUE` on the command line, converted with the types the app declares (describe), so
`-p seedclip=6` sends the number 6. The server still validates ranges, choices and names."""

from __future__ import annotations

from typing import Any

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class OptionSyntaxError(ValueError):
    """A -p value that is not NAME=VALUE or does not convert to the option's type."""


def split(pairs: list[str]) -> list[tuple[str, str | None]]:
    out = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not name:
            raise OptionSyntaxError(f"-p {pair!r}: expected NAME=VALUE")
        out.append((name, value if sep else None))
    return out


def convert(pairs: list[str], described: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """job_inputs from -p pairs. Unknown names are sent as strings: the server's answer names
    them (one source of truth for what an app accepts)."""
    values: dict[str, Any] = {}
    for name, raw in split(pairs):
        kind = (described.get(name) or {}).get("type", "str")
        values[name] = _typed(name, kind, raw)
    return values


def _typed(name: str, kind: str, raw: str | None) -> Any:
    if kind in ("none", "bool"):
        if raw is None:
            return True  # `-p flag` switches a flag on
        if raw.strip().lower() in TRUE:
            return True
        if raw.strip().lower() in FALSE:
            return False
        raise OptionSyntaxError(f"option {name}: {raw!r} is not true or false")
    if raw is None:
        raise OptionSyntaxError(f"option {name}: expected {name}=VALUE")
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise OptionSyntaxError(f"option {name}: {raw!r} is not an integer") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise OptionSyntaxError(f"option {name}: {raw!r} is not a number") from None
    return raw
