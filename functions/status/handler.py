"""status: GET /<job_id> answers the job's state (caesar-rest fields plus progress, times and
error class). ?wait=N (s, at most 60) holds the answer until the state changes (long poll), or
the progress when ?progress=P says which one the caller knows.
/caesar-rest/<job_id> (the caesar-rest alias job/<id>/status): caesar-rest's shape (pid, string
elapsed_time)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import caesar_rest, http, longpoll
    from .caesar_faas.caesar_rest import jobs as caesar_rest_jobs
    from .caesar_faas.jobs import records
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import caesar_rest, http, longpoll
    from caesar_faas.caesar_rest import jobs as caesar_rest_jobs
    from caesar_faas.jobs import records


@http.authenticated("GET")
def handle(req: http.Request, svc, who):
    if caesar_rest.marked(req):
        return caesar_rest_jobs.status(req, svc, who)
    if len(req.parts) != 1:
        raise http.not_found("route")
    job = longpoll.wait_for_change(svc.store, who.owner, who.is_admin, req.parts[0],
                                  wait=req.int_arg("wait", 0, low=0, high=60), since=req.arg("state"),
                                  since_progress=_known_progress(req))
    return http.respond(200, records.public_view(job))


def _known_progress(req: http.Request) -> int | None:
    if req.arg("progress") in (None, ""):
        return None
    return req.int_arg("progress", 0, low=0, high=100)
