"""HTTP answers in UWS style: XML documents, text/plain values, 303 See Other after every
change (UWS 1.1 §2.2.3), and errors as plain text with the standard status codes (DALI: a
client shows the text as it is). Requests are parsed here too: parameters come as form fields
(application/x-www-form-urlencoded) or in the query string, names repeated for PHASE filters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from .. import http
from ..errors import ApiError, MethodNotAllowed, NotFound, UnsupportedMediaType
from ..http import Request
from .documents import MEDIA_TYPE

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
MAX_FORM = 1024 * 1024  # a job's parameters are small; anything larger is not a UWS form


def xml(body: bytes, status: int = 200) -> dict[str, Any]:
    return {"statusCode": status, "body": body.decode("utf-8"), "headers": {"Content-Type": MEDIA_TYPE}}


def text(value: str, status: int = 200) -> dict[str, Any]:
    return {"statusCode": status, "body": value, "headers": {"Content-Type": TEXT}}


def see_other(url: str) -> dict[str, Any]:
    return {"statusCode": 303, "body": "", "headers": {"Location": url}}


def error(exc: ApiError) -> dict[str, Any]:
    headers = {"Content-Type": TEXT, **exc.headers}
    return {"statusCode": exc.http_status, "body": exc.message + "\n", "headers": headers}


def endpoint(fn: Callable[[Request], Any]) -> Callable[[Any, Any], Any]:
    """http.endpoint with text errors: ApiError -> its status and message; anything else -> 500
    with no internals."""
    return http.endpoint(fn, errors=error)


def query_pairs(req: Request) -> list[tuple[str, str]]:
    query: Any = req.query
    if hasattr(query, "getlist"):  # werkzeug's MultiDict keeps repeated names (PHASE=...&PHASE=...)
        return [(str(k), str(v)) for k, v in query.items(multi=True)]
    return [(str(k), str(v)) for k, v in query.items()]


def form_pairs(req: Request) -> list[tuple[str, str]]:
    """The POSTed form fields, then the query string's (both are parameters in UWS)."""
    body = req.body
    pairs: list[tuple[str, str]] = []
    if body:
        kind = req.header("Content-Type").split(";")[0].strip().lower()
        if kind not in ("application/x-www-form-urlencoded", ""):
            raise UnsupportedMediaType("send the parameters as application/x-www-form-urlencoded")
        if len(body) > MAX_FORM:
            raise UnsupportedMediaType("the form is too large for job parameters")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UnsupportedMediaType("the form is not valid UTF-8 form data") from exc
    return pairs + query_pairs(req)


def only(req: Request, *methods: str) -> None:
    if req.method not in methods:
        raise MethodNotAllowed(f"{req.method} is not allowed here (allowed: {', '.join(methods)})",
                               headers={"Allow": ", ".join(methods)})


def no_route(req: Request) -> NotFound:
    return NotFound(f"no route /{'/'.join(req.parts)} in the UWS service")
