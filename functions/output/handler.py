"""output: GET /<job_id> streams a tar.gz of all products; GET /<job_id>/<product> one product
(?redirect=1: a redirect to a signed URL). A job not finished answers 202 with its state.
/caesar-rest/<job_id>[/<route>] (the caesar-rest aliases job/<id>/output and its product
routes sources, output-sources, source-components, output-components, preview, output-plot)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import caesar_rest, downloads, http, outputs
    from .caesar_faas.caesar_rest import outputs as caesar_rest_outputs
    from .caesar_faas.jobs.control import load_job
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import caesar_rest, downloads, http, outputs
    from caesar_faas.caesar_rest import outputs as caesar_rest_outputs
    from caesar_faas.jobs.control import load_job


@http.authenticated("GET")
def handle(req: http.Request, svc, who):
    if caesar_rest.marked(req):
        return caesar_rest_outputs.output(req, svc, who)
    if not 1 <= len(req.parts) <= 2:
        raise http.not_found("route")
    job = load_job(svc.store, who.owner, req.parts[0], admin=who.is_admin)
    if not outputs.is_finished(job):
        return http.respond(202, outputs.not_ready_view(job))
    if len(req.parts) == 1:
        return http.stream_response(outputs.archive(svc.storage, job), media_type="application/gzip",
                                    filename=f"{job['id']}.tar.gz")
    key, media_type = outputs.product(svc.storage, job, req.parts[1])
    return downloads.serve(svc, key, req.parts[1], media_type, redirect=req.flag("redirect"),
                           link=req.flag("link"))
