"""registrar (internal, called by the connector): MinIO-format object-created notifications
register files uploaded straight to storage (pending -> ready, or invalid with the reason)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http, internal_auth, runtime, uploads
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http, internal_auth, runtime, uploads


@http.endpoint
def handle(req: http.Request):
    svc = runtime.services()
    internal_auth.require_system(http.caller(req, svc.settings))
    if req.method != "POST":
        raise http.method_not_allowed(req, "POST")
    return http.respond(200, uploads.register_from_notification(svc, req.json()))
