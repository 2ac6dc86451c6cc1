"""submit: POST / with caesar-rest's body {app, job_inputs, data_inputs, tag?, timeout?}:
validated strictly, stored PENDING, then announced on caesar.jobs.submitted (an outbox).
/caesar-rest (the caesar-rest alias POST /caesar/api/v1.0/job): caesar-rest's shapes, and its
inputfile given as a path of one's own upload."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import caesar_rest, http
    from .caesar_faas.caesar_rest import jobs as caesar_rest_jobs
    from .caesar_faas.jobs import submit
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import caesar_rest, http
    from caesar_faas.caesar_rest import jobs as caesar_rest_jobs
    from caesar_faas.jobs import submit


@http.authenticated("POST")
def handle(req: http.Request, svc, who):
    if caesar_rest.marked(req):
        return caesar_rest_jobs.submit(req, svc, who)
    if req.parts:
        raise http.not_found("route")
    http.require_json(req)
    return http.respond(202, submit.submit(svc.store, svc.bus, svc.settings, who.owner, req.json()))
