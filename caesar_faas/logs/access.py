"""AccessLog: WSGI middleware for the local gateway and every function image (index.py).

Per request: X-Request-Id taken from the caller when valid (logs/context.py) or made, bound to
every line logged while the request runs, echoed in the response; at the end (after the last
byte of a streamed download) one access line: method, path without the query string, status,
duration_ms, bytes, user (bound by http.authenticated), request_id, and the function, job or
file the path names."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .context import bind, clear, new_request_id, valid_request_id
from .setup import get_logger

log = get_logger("caesar.access")

_FUNCTION = re.compile(r"^/function/([a-z][a-z0-9-]*)")
_UUID = r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
_JOB_PATH = re.compile(rf"^/(?:function/(?:status|output|cancel)|caesar/api/v1\.0/job)/{_UUID}")
_FILE_PATH = re.compile(rf"^/(?:function/(?:files|upload)|caesar/api/v1\.0/(?:download|delete))/{_UUID}")


def request_context(environ: dict[str, Any], function: str | None = None) -> dict[str, str | None]:
    """function, job_id and file_id as the path names them, or, for the connector's CloudEvents
    calls (dispatcher, notifier, registrar), as the event's subject attribute does."""
    path = environ.get("PATH_INFO") or "/"
    fn = _FUNCTION.match(path)
    job = _JOB_PATH.match(path)
    found = _FILE_PATH.match(path)
    out = {"function": fn.group(1) if fn else function, "job_id": job.group(1) if job else None,
           "file_id": found.group(1) if found else None}
    kind, about = environ.get("HTTP_CE_TYPE") or "", environ.get("HTTP_CE_SUBJECT") or ""
    if about and re.fullmatch(_UUID, about):
        if kind.startswith("org.caesar.jobs."):
            out["job_id"] = about
        elif kind.startswith("org.caesar.files."):
            out["file_id"] = about
    return out


class _Body:
    """The response iterable, counted; the access line is written when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body = body
        self._done = done
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self.sent)


class AccessLog:
    def __init__(self, app: Callable[..., Any], function: str | None = None) -> None:
        self.app = app
        self.function = function

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        rid = valid_request_id(environ.get("HTTP_X_REQUEST_ID")) or new_request_id()
        environ["HTTP_X_REQUEST_ID"] = rid  # what the handlers see is the id in force
        path = environ.get("PATH_INFO") or "/"
        clear()
        bind(request_id=rid, **request_context(environ, self.function))
        status: dict[str, int] = {}

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status["code"] = int(code.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"] + [("X-Request-Id", rid)]
            return start_response(code, headers, exc_info)

        def done(sent: int) -> None:
            code = status.get("code", 500)
            line = log.warning if code >= 500 else log.info
            line("request", method=environ.get("REQUEST_METHOD"), path=path, status=code,
                 duration_ms=round((time.perf_counter() - started) * 1000, 2), bytes=sent)
            clear()

        try:
            body = self.app(environ, start)
        except BaseException:
            status.setdefault("code", 500)
            done(0)
            raise
        return _Body(body, done)
