"""monitor (internal, cron): reconcile active jobs with the backend, re-publish stuck work,
enforce deadlines and expiry, expire unfinished uploads, compute accounting. Safe to repeat."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http, internal_auth, maintenance, runtime
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http, internal_auth, maintenance, runtime


@http.endpoint
def handle(req: http.Request):
    svc = runtime.services()
    internal_auth.require_system(http.caller(req, svc.settings))
    if req.method not in ("POST", "GET"):
        raise http.method_not_allowed(req, "POST")
    return http.respond(200, maintenance.run(svc))
