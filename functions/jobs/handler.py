"""jobs: GET / lists the caller's jobs (filters state, app, tag; limit/cursor pagination;
admins may add all=1). Every answer carries the page's `version`; with ?since=<version>&wait=N
(s, at most 60) the answer is held until that page changes (the web page's live table).
/caesar-rest (the caesar-rest alias GET /caesar/api/v1.0/jobs):
{"job_ids": [...], "jobs": [caesar-rest's job documents]}, the caller's own, newest first."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import caesar_rest, http, longpoll
    from .caesar_faas.caesar_rest import jobs as caesar_rest_jobs
    from .caesar_faas.jobs import control
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import caesar_rest, http, longpoll
    from caesar_faas.caesar_rest import jobs as caesar_rest_jobs
    from caesar_faas.jobs import control


@http.authenticated("GET")
def handle(req: http.Request, svc, who):
    if caesar_rest.marked(req):
        return caesar_rest_jobs.jobs(req, svc, who)
    if req.parts:
        raise http.not_found("route")
    wait = req.int_arg("wait", 0, low=0, high=60)

    # An empty state= or cursor= is no filter and the first page (what a form with nothing chosen
    # sends); the limit's bound is the library's, so both refusals say the same.
    state, cursor = req.arg("state") or None, req.arg("cursor") or None
    limit = req.int_arg("limit", 100, high=control.MAX_LIMIT)

    def load():
        return control.list_jobs(
            svc.store, who.owner, state=state, app=req.arg("app"), tag=req.arg("tag"),
            limit=limit, cursor=cursor, admin=who.is_admin and req.flag("all"))

    return http.respond(200, longpoll.wait_for_page_change(load, "jobs", wait=wait, since=req.arg("since")))
