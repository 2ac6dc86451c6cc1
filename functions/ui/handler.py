"""ui: GET / the web page; GET /openapi.yaml the API description. Public: the page asks for a
token and calls the other functions with it."""

from pathlib import Path

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http

HERE = Path(__file__).resolve().parent
# In the image openapi.yaml is copied beside this file (stack.yml configuration.copy);
# in the repository it sits at the top.
OPENAPI = next((p for p in (HERE / "openapi.yaml", HERE.parents[1] / "openapi.yaml") if p.exists()), None)


@http.endpoint
def handle(req: http.Request):
    if req.method != "GET":
        raise http.method_not_allowed(req, "GET")
    if req.parts == ["openapi.yaml"]:
        if OPENAPI is None:
            raise http.not_found("openapi.yaml")
        return http.respond(200, OPENAPI.read_text(), {"Content-Type": "application/yaml"})
    if req.parts in ([], ["index.html"]):
        return http.respond(200, (HERE / "static" / "index.html").read_text(),
                            {"Content-Type": "text/html; charset=utf-8",
                             "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                                        "script-src 'unsafe-inline'; img-src 'self' blob:"})
    raise http.not_found("page")
