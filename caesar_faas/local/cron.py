"""The local cron scheduler: invokes the functions that stack.yml binds to `cron-function`
at their `schedule`, like the OpenFaaS cron-connector.

CAESAR_LOCAL_CRON_SECONDS=N (local stack only) runs every scheduled function every N seconds
instead, so tests and demos need not wait for minute boundaries."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime

import requests

from ..config import load_settings
from ..connector.targets import target_url
from ..internal_auth import auth_headers
from ..logs import configure
from .cronexpr import CronExpr
from .stack import load_stack

log = logging.getLogger("caesar.cron")


def invoke(function: str) -> None:
    settings = load_settings()
    try:
        resp = requests.post(target_url(function, settings.gateway_url), json={"trigger": "cron"},
                             headers={**auth_headers(settings), "X-Connector": "cron"}, timeout=120)
        log.info("cron -> %s: HTTP %d", function, resp.status_code)
    except requests.RequestException as exc:
        log.warning("cron -> %s failed: %s", function, type(exc).__name__)


def main() -> None:
    configure("cron")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    schedules = [(s.function, CronExpr(s.cron)) for s in load_stack().schedules()]
    every = float(os.environ.get("CAESAR_LOCAL_CRON_SECONDS", "0") or 0)
    log.info("schedules: %s", ", ".join(f"{fn} '{expr.expr}'" for fn, expr in schedules) or "none")
    last_minute = None
    while not stop.is_set():
        if every > 0:
            for function, _ in schedules:
                invoke(function)
            stop.wait(every)
            continue
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        if now != last_minute:
            last_minute = now
            for function, expr in schedules:
                if expr.matches(now):
                    threading.Thread(target=invoke, args=(function,), daemon=True).start()
        stop.wait(max(0.5, 60 - time.time() % 60))


if __name__ == "__main__":
    main()
