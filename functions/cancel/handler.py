"""cancel: POST /<job_id> aborts a job (ABORTED); idempotent; a finished job answers 409.
GET|POST /caesar-rest/<job_id> (the caesar-rest alias job/<id>/cancel): caesar-rest's texts."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import caesar_rest, http
    from .caesar_faas.caesar_rest import jobs as caesar_rest_jobs
    from .caesar_faas.jobs import control
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import caesar_rest, http
    from caesar_faas.caesar_rest import jobs as caesar_rest_jobs
    from caesar_faas.jobs import control


@http.authenticated()
def handle(req: http.Request, svc, who):
    if caesar_rest.marked(req):
        return caesar_rest_jobs.cancel(req, svc, who)
    if req.method != "POST":
        raise http.method_not_allowed(req, "POST")
    if len(req.parts) != 1:
        raise http.not_found("route")
    return http.respond(200, control.cancel(svc.store, svc.bus, who.owner, req.parts[0], admin=who.is_admin,
                                            settings=svc.settings))
