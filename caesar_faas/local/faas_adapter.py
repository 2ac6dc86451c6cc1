"""The OpenFaaS python3-http contract, in-process. The contract itself (Event, Context,
format_response) is loaded from the function template (template/caesar-python3-http/
faas_contract.py), the very file the images run, so the local gateway cannot drift from them."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from flask import Response

TEMPLATE = Path(__file__).resolve().parents[2] / "template" / "caesar-python3-http"


_lock = threading.Lock()
_ready: dict[str, ModuleType] = {}  # modules whose import has finished (sys.modules has them earlier)


def _load(module_name: str, path: Path) -> ModuleType:
    loaded = _ready.get(module_name)
    if loaded is not None:  # every request after the first: no lock for 16 threads to queue on
        return loaded
    with _lock:
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]  # a failed import must not leave a half module behind
            raise
        _ready[module_name] = module
        return module


contract = _load("caesar_faas_contract", TEMPLATE / "faas_contract.py")


def load_handler(name: str, folder: Path) -> ModuleType:
    """Import functions/<name>/handler.py under a unique module name (every function's module
    is called `handler`)."""
    return _load(f"caesar_fn_{name}", folder / "handler.py")


def call(handler: ModuleType, request: Any, path: str, method: str | None = None) -> Any:
    event = contract.Event(request, path=path, method=method, stream_body=True)
    return contract.format_response(handler.handle(event, contract.Context()))


def json_error(status: int, code: str, message: str) -> Response:
    return Response(json.dumps({"error": code, "status": message}), status=status, mimetype="application/json")
