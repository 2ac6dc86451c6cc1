"""Runner start-up imports only what a job needs before its finder starts: no matplotlib (the
preview module is imported by the thread that prepares it beside the finder), no finder adapter but the job's own, no websocket support
for a nats:// server, and neither the products' writers (preloaded while the finder runs) nor
requests (only for runners without storage access)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _loaded_after(code: str) -> dict[str, bool]:
    probe = code + (
        "\nimport json, sys\n"
        "names = ['matplotlib', 'matplotlib.pyplot', 'aiohttp', 'caesar_faas.runner.finders.aegean',"
        " 'caesar_faas.runner.finders.sep', 'caesar_faas.runner.finders.pybdsf', 'caesar_faas.runner.products',"
        " 'requests']\n"
        "print(json.dumps({n: sys.modules.get(n) is not None for n in names}))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_runner_imports_neither_matplotlib_nor_websockets_nor_other_finders() -> None:
    loaded = _loaded_after(
        "from caesar_faas.runner.main import skip_websocket_support\n"
        "skip_websocket_support('nats://127.0.0.1:4222')\n"
        "import caesar_faas.runner.job, caesar_faas.events.bus, nats\n"
        "from caesar_faas.runner.finders import load_adapter\n"
        "load_adapter('sep')\n")
    assert loaded == {"matplotlib": False, "matplotlib.pyplot": False, "aiohttp": False,
                      "caesar_faas.runner.finders.aegean": False, "caesar_faas.runner.finders.sep": True,
                      "caesar_faas.runner.finders.pybdsf": False, "caesar_faas.runner.products": False,
                      "requests": False}


def test_a_websocket_server_keeps_websocket_support() -> None:
    loaded = _loaded_after(
        "from caesar_faas.runner.main import skip_websocket_support\n"
        "skip_websocket_support('ws://127.0.0.1:8080')\n"
        "import caesar_faas.events.bus, nats.aio.transport\n")
    assert loaded["aiohttp"] is True
