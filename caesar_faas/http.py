"""What every function handler needs around its one call into the library.

A handler gets an OpenFaaS python3-http `event` (body bytes, headers, method, query, path) and
returns `{statusCode, body, headers}` or a Flask Response. `Request` wraps the event; `endpoint`
turns exceptions into JSON errors of caesar-rest's shape and never leaks internals.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from flask import Response

from .errors import ApiError, BadRequest, MethodNotAllowed, NotFound, UnsupportedMediaType
from .logs import bind

log = logging.getLogger("caesar.http")

Handler = Callable[[Any, Any], Any]


class Request:
    """A parsed OpenFaaS event."""

    def __init__(self, event: Any) -> None:
        self.event = event
        self.method: str = (getattr(event, "method", "GET") or "GET").upper()
        self.headers: Mapping[str, str] = getattr(event, "headers", {}) or {}
        self.query: Mapping[str, str] = getattr(event, "query", {}) or {}
        path = getattr(event, "path", "/") or "/"
        self.parts: list[str] = [p for p in path.split("/") if p]

    @property
    def body(self) -> bytes:
        return getattr(self.event, "body", b"") or b""

    @property
    def stream(self) -> BinaryIO:
        """The body as a stream: the local gateway passes its socket stream (no copy in
        memory); the OpenFaaS template has already read the body into bytes."""
        stream = getattr(self.event, "stream", None)
        return stream if stream is not None else io.BytesIO(self.body)

    def header(self, name: str, default: str = "") -> str:
        value = self.headers.get(name)
        if value is None:
            lower = name.lower()
            for key, val in self.headers.items():
                if key.lower() == lower:
                    return val
            return default
        return value

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or 400."""
        try:
            doc = json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("the body is not valid JSON", code="invalid_json") from exc
        except RecursionError as exc:  # nesting deeper than the parser's recursion limit
            raise BadRequest("the body is nested too deeply", code="invalid_json") from exc
        if not isinstance(doc, dict):
            raise BadRequest("the body must be a JSON object", code="invalid_json")
        return doc

    def arg(self, name: str, default: str | None = None) -> str | None:
        value = self.query.get(name)
        return default if value is None else value

    def int_arg(self, name: str, default: int, *, low: int = 1, high: int = 1000) -> int:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise BadRequest(f"query parameter {name!r} must be an integer", code="invalid_query") from exc
        if not low <= value <= high:
            raise BadRequest(f"query parameter {name!r} must be between {low} and {high}", code="invalid_query")
        return value

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() in ("1", "true", "yes")


def require_json(req: Request) -> None:
    """415 when a body is sent as anything but JSON (routes that take only JSON); an empty body
    without a type is left to Request.json (400)."""
    media = req.header("Content-Type").split(";")[0].strip().lower()
    if media != "application/json" and (media or req.body):
        raise UnsupportedMediaType("send the body as application/json", code="unsupported_media_type")


def respond(status: int, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A python3-http response dict; a dict or list body is sent as JSON."""
    out_headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        # The template's jsonify does not serialise lists; encode here so both behave alike.
        body = json.dumps(body)
        out_headers.setdefault("Content-Type", "application/json")
    return {"statusCode": status, "body": "" if body is None else body, "headers": out_headers}


def error(exc: ApiError) -> dict[str, Any]:
    return respond(exc.http_status, exc.body(), exc.headers)


def stream_response(chunks: Iterator[bytes], *, media_type: str, filename: str | None = None,
                    size: int | None = None, status: int = 200) -> Response:
    headers: dict[str, str] = {}
    if filename:
        headers["Content-Disposition"] = content_disposition(filename)
    if size is not None:
        headers["Content-Length"] = str(size)
    return Response(chunks, status=status, mimetype=media_type, headers=headers, direct_passthrough=True)


def content_disposition(filename: str) -> str:
    """An attachment header safe for any user-supplied name (RFC 6266 filename*)."""
    from urllib.parse import quote

    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def redirect(url: str) -> dict[str, Any]:
    return respond(302, {"location": url}, {"Location": url})


def endpoint(fn: Callable[[Request], Any], errors: Callable[[ApiError], Any] = error) -> Handler:
    """Wrap a function body: build the Request, turn errors into answers (JSON by default;
    `errors` shapes them otherwise, e.g. the UWS face's text)."""

    @functools.wraps(fn)
    def handle(event: Any, context: Any) -> Any:
        req = Request(event)
        try:
            return fn(req)
        except ApiError as exc:
            return errors(exc)
        except Exception:  # noqa: BLE001 - a 500 must never carry internals
            log.exception("unhandled error in %s %s", req.method, "/".join(req.parts))
            return errors(ApiError("internal error; the operators have the details", code="internal",
                                   http_status=500))

    return handle


def authenticated(*methods: str, system: bool = False) -> Callable[[Callable[..., Any]], Handler]:
    """An endpoint for signed-in callers: checks the bearer token (401), the system role when
    `system` (403), the method (405), then calls fn(req, services, principal)."""

    def wrap(fn: Callable[..., Any]) -> Handler:
        @functools.wraps(fn)
        def body(req: Request) -> Any:
            from .runtime import services

            svc = services()
            who = caller(req, svc.settings)
            bind(user=who.owner)  # on every following line, and on the request's access line
            if system:
                from .internal_auth import require_system

                require_system(who)
            if methods and req.method not in methods:
                raise method_not_allowed(req, ", ".join(methods))
            return fn(req, svc, who)

        return endpoint(body)

    return wrap


def method_not_allowed(req: Request, allowed: str) -> MethodNotAllowed:
    return MethodNotAllowed(f"{req.method} is not allowed here (allowed: {allowed})",
                            headers={"Allow": allowed})


def not_found(what: str = "resource") -> NotFound:
    return NotFound(f"{what} not found")


def caller(req: Request, settings: Any) -> Any:
    """The authenticated principal of this request (401 otherwise)."""
    from .auth import authenticate

    return authenticate(req.headers, req.query, settings)



def cloud_event(req: Request) -> dict[str, Any]:
    """The CloudEvent a connector call carries (binary or structured mode), or 400."""
    from .events.cloudevents import from_http

    try:
        return from_http(dict(req.headers), req.body)
    except ValueError as exc:
        raise BadRequest(str(exc), code="not_a_cloudevent") from exc
