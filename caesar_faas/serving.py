"""waitress as every HTTP process of the service runs it (the local gateway, a function image's
index.py), with the answers it gives by itself in the API's JSON error shape.

waitress refuses some requests before the application sees them: a body over
max_request_body_size (413), headers over max_request_header_size (431), a request it cannot
parse (400: bad start line, header, Content-Length or chunk), a Transfer-Encoding it does not
implement (501). It writes those as text/plain. Here they are `{"error", "status"}` JSON like
every other refusal, and the unsupported transfer coding is a 400: it is the client's request
that cannot be read, and no client input may get a 5xx. The Flask side (werkzeug's own HTTP
errors: 404, 405, 413, ...) gets the same shape from `json_http_errors`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from waitress.utilities import Error, RequestEntityTooLarge, RequestHeaderFieldsTooLarge, ServerNotImplemented
from werkzeug.exceptions import HTTPException

from .serving_stream import StreamedWhen, StreamSlots, streaming_channel

REASONS = {400: "Bad Request", 413: "Request Entity Too Large", 431: "Request Header Fields Too Large",
           500: "Internal Server Error"}


def refusal(error: Error, adj: Adjustments) -> tuple[int, str, str]:
    """(status, code, human text) for one of waitress's own refusals."""
    if isinstance(error, RequestEntityTooLarge):
        return 413, "request_too_large", (f"the request body is larger than this server accepts "
                                          f"({adj.max_request_body_size} bytes); large images go through the "
                                          "presigned upload route (POST /function/upload with a JSON body)")
    if isinstance(error, RequestHeaderFieldsTooLarge):
        return 431, "headers_too_large", f"the request headers exceed {adj.max_request_header_size} bytes"
    if isinstance(error, ServerNotImplemented):
        return 400, "unsupported_transfer_encoding", "the request's Transfer-Encoding is not supported (send chunked or none)"
    if error.code < 500:
        # waitress's texts name the part that does not parse ("Invalid chunk size") and nothing else
        return 400, "malformed_request", f"the HTTP request does not parse: {error.body}"
    return 500, "internal", "internal error; the operators have the details"


class JsonErrorTask(ErrorTask):
    def execute(self) -> None:
        status, code, message = refusal(self.request.error, self.channel.server.adj)
        body = json.dumps({"error": code, "status": message}).encode()
        self.status = f"{status} {REASONS[status]}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()  # the rest of a refused request is not read
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask


def make_server(app: Any, *, streamed: StreamedWhen | None = None, max_streamed: int | None = None,
                **adjustments: Any) -> Any:
    """waitress.create_server(app, **adjustments), with JSON refusals; the bodies of the requests
    `streamed` picks read from the connection by the application (serving_stream.py), at most
    max_streamed at once (default: half the threads), the others buffered by waitress."""
    if streamed is not None and int(adjustments.get("channel_request_lookahead", 0)):
        raise ValueError("streamed bodies need channel_request_lookahead 0 (the I/O thread must leave them alone)")
    if max_streamed is None:
        max_streamed = max(1, int(adjustments.get("threads", 4)) // 2)
    channel = JsonErrorChannel if streamed is None else \
        streaming_channel(JsonErrorChannel, streamed, StreamSlots(max_streamed))
    listeners: dict[Any, Any] = {}
    server = create_server(app, map=listeners, **adjustments)
    for listener in list(listeners.values()):  # one per listening socket
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = channel
    return server


def serve(app: Any, *, streamed: StreamedWhen | None = None, max_streamed: int | None = None,
          **adjustments: Any) -> None:
    """make_server(...).run(): serve until the process stops."""
    make_server(app, streamed=streamed, max_streamed=max_streamed, **adjustments).run()


def json_http_errors(app: Flask) -> None:
    """Every HTTP error werkzeug raises by itself answered as `{"error", "status"}` JSON (a 405
    keeps its Allow header). Handlers registered for a specific code still win."""

    @app.errorhandler(HTTPException)
    def as_json(exc: HTTPException) -> Response:
        status = exc.code or 500
        name = (exc.name or "error").lower().replace(" ", "_")
        answer = Response(json.dumps({"error": name, "status": exc.description or exc.name}), status=status,
                          mimetype="application/json")
        for key, value in exc.get_headers():
            if key.lower() not in ("content-type", "content-length"):
                answer.headers[key] = value
        return answer
