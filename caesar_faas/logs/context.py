"""The bound context of log lines (structlog contextvars) and request ids.

A request id comes from the caller's X-Request-Id when it is a short token of safe characters
(anything else could forge or break log lines), else it is made here. It travels in CloudEvents
as the extension attribute `requestid`, in the connector's calls as X-Request-Id, and to the
runner as CAESAR_REQUEST_ID, so one id ties submit, dispatch, launch, runner and finish together."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# The fields the services bind (issue 17): only these are carried to the runner's events.
CONTEXT_FIELDS = ("request_id", "function", "user", "job_id", "file_id", "app")


def valid_request_id(value: str | None) -> str | None:
    return value if isinstance(value, str) and REQUEST_ID.fullmatch(value) else None


# Request ids need to be unique, not unguessable (they grant nothing): drawn from a generator
# seeded once per process from the OS (again in a forked child) instead of a getrandom() call
# per request, which let the other request threads take the GIL mid-request.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def new_request_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


def bind(**fields: Any) -> None:
    """Bind fields (None values are skipped) to every following line of this thread/task."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v is not None})


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """bind() for a block only; the previous values come back afterwards."""
    with structlog.contextvars.bound_contextvars(**{k: v for k, v in fields.items() if v is not None}):
        yield


def clear() -> None:
    structlog.contextvars.clear_contextvars()


def request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None
