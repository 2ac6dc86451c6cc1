"""registrar (internal, called by the connector): MinIO-format object-created notifications
register files uploaded straight to storage (pending -> ready, or invalid with the reason)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http, uploads
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http, uploads


@http.authenticated("POST", system=True)
def handle(req: http.Request, svc, who):
    return http.respond(200, uploads.register_from_notification(svc, req.json()))
