"""ui: the web page and the API description. Public: the page signs in in the browser and calls
the other functions with its bearer token.

GET /                 the page (index.html, with its Content-Security-Policy)
GET /<asset>          its scripts, style sheet and icon (the files of static/, nothing else)
GET /config.json      what the page needs to know about this deployment (OIDC sign-in)
GET /openapi.yaml     the API description
"""

from pathlib import Path

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http, webpage
    from .caesar_faas.config import load_settings
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http, webpage
    from caesar_faas.config import load_settings

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# In the image openapi.yaml is copied beside this file (stack.yml configuration.copy);
# in the repository it sits at the top.
OPENAPI = next((p for p in (HERE / "openapi.yaml", HERE.parents[1] / "openapi.yaml") if p.exists()), None)
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# The page's files are small and change with a deployment: browsers revalidate them each time.
REVALIDATE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def asset(name):
    """static/<name> when it is one of the page's own files (a plain name, a known type)."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in MEDIA_TYPES or not path.is_file():
        raise http.not_found("page")
    return path


@http.endpoint
def handle(req: http.Request):
    if req.method != "GET":
        raise http.method_not_allowed(req, "GET")
    parts = req.parts
    if parts == ["openapi.yaml"]:
        if OPENAPI is None:
            raise http.not_found("openapi.yaml")
        return http.respond(200, OPENAPI.read_text(), {"Content-Type": "application/yaml"})
    if parts == ["config.json"]:
        return http.respond(200, webpage.page_config(load_settings()), {"Cache-Control": "no-store"})
    if parts in ([], ["index.html"]):
        return http.respond(200, (STATIC / "index.html").read_text(), {
            **REVALIDATE, "Content-Type": MEDIA_TYPES[".html"], "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": webpage.content_security_policy(load_settings())})
    if len(parts) == 1:
        path = asset(parts[0])
        return http.respond(200, path.read_text(), {**REVALIDATE, "Content-Type": MEDIA_TYPES[path.suffix]})
    raise http.not_found("page")
