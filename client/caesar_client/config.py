"""Where the client finds the server and its token: arguments first, then CAESAR_URL /
CAESAR_TOKEN, then the file `caesar login` writes ($XDG_CONFIG_HOME/caesar/config.toml, or
~/.config/caesar/config.toml), which is readable by its owner only (mode 0600)."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8080"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "caesar" / "config.toml"


def state_dir() -> Path:
    """Where unfinished uploads are remembered (so a second `upload` of the same file resumes)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "caesar"


def read_config(path: Path | None = None) -> dict[str, str]:
    path = path or config_path()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable config file ({exc})") from exc
    return {k: v for k, v in doc.items() if isinstance(v, str)}


def write_config(values: dict[str, str], path: Path | None = None) -> Path:
    """Write url/token: created with mode 0600 (never world-readable, not even for a moment)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A JSON string is a valid TOML basic string (same escapes).
    text = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None
    source: str  # where the token came from: argument, environment, config file, none


def resolve(url: str | None = None, token: str | None = None) -> Settings:
    saved: dict[str, str] | None = None

    def from_file() -> dict[str, str]:
        nonlocal saved
        if saved is None:
            saved = read_config()
        return saved

    chosen_url = url or os.environ.get("CAESAR_URL") or from_file().get("url") or DEFAULT_URL
    if token:
        chosen_token, source = token, "argument"
    elif os.environ.get("CAESAR_TOKEN"):
        chosen_token, source = os.environ["CAESAR_TOKEN"], "environment (CAESAR_TOKEN)"
    elif from_file().get("token"):
        chosen_token, source = from_file()["token"], f"config file ({config_path()})"
    else:
        chosen_token, source = None, "none"
    return Settings(url=chosen_url.rstrip("/"), token=chosen_token, source=source)
