"""submit: POST / with caesar-rest's body {app, job_inputs, data_inputs, tag?, timeout?}:
validated strictly, stored PENDING, then announced on caesar.jobs.submitted (an outbox)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http
    from .caesar_faas.jobs import submit
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http
    from caesar_faas.jobs import submit


@http.authenticated("POST")
def handle(req: http.Request, svc, who):
    if req.parts:
        raise http.not_found("route")
    http.require_json(req)
    return http.respond(202, submit.submit(svc.store, svc.bus, svc.settings, who.owner, req.json()))
