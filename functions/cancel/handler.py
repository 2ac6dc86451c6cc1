"""cancel: POST /<job_id> aborts a job (ABORTED); idempotent; a finished job answers 409."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http, runtime
    from .caesar_faas.jobs import control, records
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http, runtime
    from caesar_faas.jobs import control, records


@http.endpoint
def handle(req: http.Request):
    svc = runtime.services()
    who = http.caller(req, svc.settings)
    if req.method not in ("POST", "DELETE"):
        raise http.method_not_allowed(req, "POST")
    if len(req.parts) != 1:
        raise http.not_found("route")
    job = control.cancel(svc.store, svc.bus, who.owner, who.is_admin, req.parts[0])
    return http.respond(200, records.public_view(job))
