"""dispatcher (internal, called by the connector): caesar.jobs.submitted -> launch through the
backend; caesar.jobs.status -> apply the runner's report; caesar.jobs.cancel -> stop the job.
Every effect is a compare-and-set, so a repeated or late event changes nothing."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http
    from .caesar_faas.errors import Forbidden
    from .caesar_faas.events import cloudevents, subjects
    from .caesar_faas.jobs import dispatch, status_auth
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http
    from caesar_faas.errors import Forbidden
    from caesar_faas.events import cloudevents, subjects
    from caesar_faas.jobs import dispatch, status_auth


@http.authenticated("POST", system=True)
def handle(req: http.Request, svc, who):
    try:
        event = cloudevents.from_http(dict(req.headers), req.body)
    except ValueError as exc:
        raise http.BadRequest(str(exc), code="not_a_cloudevent") from exc
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    kind = event.get("type")
    if kind == subjects.event_type(subjects.JOBS_SUBMITTED):
        result = dispatch.on_submitted(svc.store, svc.backend, svc.bus, svc.settings, _job_id(data))
    elif kind == subjects.event_type(subjects.JOBS_STATUS):
        if not status_auth.verify(svc.settings, data):  # only the job's own runner holds its key
            raise Forbidden("the status event is not signed with its job's key", code="unsigned_status")
        result = dispatch.on_status(svc.store, svc.backend, svc.bus, svc.settings, data)
    elif kind == subjects.event_type(subjects.JOBS_CANCEL):
        result = dispatch.on_cancel(svc.store, svc.backend, svc.settings, _job_id(data))
    else:
        raise http.BadRequest(f"unexpected event type {kind!r}", code="unexpected_event")
    return http.respond(200, {"result": result if isinstance(result, (dict, list, str)) else str(result)})


def _job_id(data: dict) -> str:
    job_id = data.get("job_id")
    if not isinstance(job_id, str):
        raise http.BadRequest("the event carries no job_id", code="invalid_event")
    return job_id
