"""The local function gateway: serves every function of stack.yml in-process at
/function/<name>[/<path>], caesar-rest aliases, the signed storage endpoint, and /healthz.

Run: python -m caesar_faas.local.gateway (the supervisor starts it; waitress, threads)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, request
from werkzeug.routing import PathConverter

from ..config import load_settings
from ..logs import bind, configure
from ..logs.access import AccessLog
from ..runtime import services
from ..serving import json_http_errors, serve
from . import aliases
from .faas_adapter import call, json_error, load_handler
from .stack import Stack, load_stack

log = logging.getLogger("caesar.gateway")

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
RECV_BYTES = 1024 * 1024
SIGNED_OBJECTS = "/storage/o/"  # storage/local_http.py's routes (imported only when the app is built)


INLINE_UPLOADS = frozenset({"/function/upload", "/function/upload/", aliases.PREFIX + "/upload",
                            aliases.PREFIX + "/upload/"})


def streamed_body(method: str, path: str, content_length: int) -> bool:
    """The requests whose bodies the application reads from the connection itself
    (serving_stream.py), storing the bytes as they come: PUTs through signed storage URLs, and
    inline uploads (multipart_streamed.py spools the file part in the same pass)."""
    if content_length <= RECV_BYTES:
        return False
    return (method == "PUT" and path.startswith(SIGNED_OBJECTS)) or (method == "POST" and path in INLINE_UPLOADS)


def health() -> tuple[dict[str, str], bool]:
    svc = services()
    checks: dict[str, str] = {}
    for name, probe in (("nats", svc.bus.ping), ("storage", svc.storage.ping), ("store", svc.store.ping)):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks[name] = f"unreachable: {type(exc).__name__}"
    return checks, all(v == "ok" for v in checks.values())


def intake_open() -> bool:
    """False while an administrator drains the service (ops.drain); healthy all the same."""
    from ..ops.drain import state

    return bool(state(services().store)["accepting"])


class AnyPath(PathConverter):
    """werkzeug's path converter, newlines included (its `.` stops at one): a path parameter
    holding %0A must reach its function, which answers for it, not miss every route."""

    regex = "[^/](?s:.)*?"


def create_app(stack: Stack | None = None) -> Flask:
    stack = stack or load_stack()
    app = Flask("caesar-gateway")
    app.url_map.converters["path"] = AnyPath  # before any route is added (the blueprint's too)

    def invoke(name: str, path: str) -> Any:
        fn = stack.functions.get(name)
        bind(function=name)  # also for the caesar-rest aliases, whose paths do not name it
        if fn is None:
            return json_error(404, "function_not_found", f"no function named {name!r}")
        try:
            # Imported on first use: like separate deployments, one broken function does not
            # take the others down.
            handler = load_handler(name, fn.handler)
        except Exception:  # noqa: BLE001
            log.exception("function %s failed to load", name)
            return json_error(502, "function_unavailable", f"function {name} failed to start")
        return call(handler, request, path)

    @app.route("/healthz", methods=["GET"])
    def healthz() -> Any:
        checks, ok = health()
        status = ("draining" if ok and not intake_open() else "ok") if ok else "degraded"
        return {"status": status, "checks": checks}, 200 if ok else 503

    @app.route("/function/<name>", methods=METHODS)
    @app.route("/function/<name>/", methods=METHODS)
    def function_root(name: str) -> Any:
        return invoke(name, "/")

    @app.route("/function/<name>/<path:rest>", methods=METHODS)
    def function_path(name: str, rest: str) -> Any:
        return invoke(name, "/" + rest)

    @app.route(aliases.PREFIX + "/<path:rest>", methods=METHODS)
    def caesar_rest(rest: str) -> Any:
        target = aliases.rewrite(request.path)
        if target is None:
            return json_error(404, "not_found", f"no route {request.path}")
        return invoke(*target)

    @app.route("/", methods=["GET"])
    @app.route("/openapi.yaml", methods=["GET"])
    def ui_root() -> Any:
        return invoke("ui", request.path)

    signed: Blueprint | None
    try:
        from ..storage.local_http import blueprint as signed
    except ImportError:  # the signed local storage endpoint is optional for the gateway to start
        signed = None
    if signed is not None:
        app.register_blueprint(signed)

    json_http_errors(app)  # any other HTTP error werkzeug raises by itself

    @app.errorhandler(404)
    def not_found(_: Any) -> Any:
        return json_error(404, "not_found", f"no route {request.path}")

    @app.errorhandler(405)
    def not_allowed(exc: Any) -> Any:
        answer = json_error(405, "method_not_allowed", f"{request.method} not allowed on {request.path}")
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            answer.headers["Allow"] = ", ".join(sorted(allowed))
        return answer

    app.wsgi_app = AccessLog(app.wsgi_app, function="gateway")  # type: ignore[method-assign]
    return app


def main() -> None:
    configure("gateway")
    settings = load_settings()
    app = create_app()
    if settings.job_backend == "local":
        services().backend.warm()  # the warm runner imports while the stack starts (backends/warm.py)
    # Above this waitress answers 413 itself (as JSON, serving.py); below it the functions answer.
    body_limit = 2 * max(settings.max_inline_upload, settings.part_size) + 16 * 1024 * 1024
    log.info("gateway listening on http://%s:%d", settings.http_host, settings.http_port)
    # recv_bytes: read large bodies in 1 MiB gulps, not waitress's default 8 KiB (a 200 MB inline
    # upload was 25,000 recv calls and as many buffer appends).
    serve(app, host=settings.http_host, port=settings.http_port, threads=16, max_request_body_size=body_limit,
          channel_timeout=300, ident="caesar-gateway", clear_untrusted_proxy_headers=True,
          recv_bytes=RECV_BYTES, streamed=streamed_body)


if __name__ == "__main__":
    main()
