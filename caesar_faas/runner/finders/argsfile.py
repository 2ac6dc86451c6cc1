"""Argument files for the finder entries that have no CLI of their own (PyBDSF, SEP).

The adapter writes everything the entry needs (resolved paths, the finder's own keyword
arguments) as JSON in the work folder and passes the file's path as the only argument; nothing
from the user reaches a command line. The entries are standalone scripts started with
`python -P <script> <args.json>`: they import only the finder library, so they do not depend on
caesar_faas being importable from the work folder, and -P keeps the work folder (and the
finders/ folder, whose sep.py would shadow the sep library) off sys.path.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def write_args(workdir: str, name: str, payload: dict[str, Any]) -> str:
    path = Path(workdir).resolve() / f"{name}_args.json"  # absolute: the entry runs in workdir
    path.write_text(json.dumps(payload, indent=2, sort_keys=True))
    return str(path)


def entry_argv(script: str, *args: str) -> list[str]:
    """argv that runs the standalone entry finders/<script>.py with this interpreter."""
    return [sys.executable, "-P", str(Path(__file__).resolve().parent / f"{script}.py"), *args]
