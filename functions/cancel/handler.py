"""cancel: POST /<job_id> aborts a job (ABORTED); idempotent; a finished job answers 409."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http
    from .caesar_faas.jobs import control
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http
    from caesar_faas.jobs import control


@http.authenticated("POST", "DELETE")
def handle(req: http.Request, svc, who):
    if len(req.parts) != 1:
        raise http.not_found("route")
    return http.respond(200, control.cancel(svc.store, svc.bus, who.owner, req.parts[0], admin=who.is_admin,
                                            settings=svc.settings))
