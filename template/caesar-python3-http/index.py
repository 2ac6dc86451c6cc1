"""Entry point of a function image: the python3-http contract (faas_contract.py) served by
waitress on :5000 behind of-watchdog in http mode. waitress's own refusals (a body or headers
too large, a request that does not parse) answer JSON like the functions (caesar_faas/serving.py,
copied into every function's build context)."""

import os

from flask import Flask, request

from faas_contract import Context, Event, format_response, function_name
from function import handler
from function.caesar_faas.serving import json_http_errors, serve

app = Flask(__name__)
json_http_errors(app)
METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE"]

try:  # the shared package, when the stack copies it in (every caesar function does)
    from function.caesar_faas.logs import configure
    from function.caesar_faas.logs.access import AccessLog
except ImportError:
    configure = AccessLog = None
if configure is not None:
    # JSON lines on stderr (the watchdog forwards them), one access line per request.
    configure(function_name())
    app.wsgi_app = AccessLog(app.wsgi_app, function=function_name())


@app.route("/", defaults={"path": ""}, methods=METHODS)
@app.route("/<path:path>", methods=METHODS)
def call_handler(path):
    return format_response(handler.handle(Event(request), Context()))


if __name__ == "__main__":
    serve(app, host=os.getenv("FUNCTION_HOST", "0.0.0.0"), port=int(os.getenv("FUNCTION_PORT", "5000")),  # noqa: S104
          threads=int(os.getenv("FUNCTION_THREADS", "8")))
