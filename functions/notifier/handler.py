"""notifier (internal, called by the connector): caesar.jobs.finished -> the end-of-job counters
of the metrics (ops/ended.py), and the job's webhook (a signed CloudEvent) and/or mail, each at
most once. 200 when nothing is left to do; 503 when a
channel should be tried again, so the connector redelivers with backoff (and dead-letters the
event after max_deliver)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http, logs
    from .caesar_faas.errors import ServiceUnavailable
    from .caesar_faas.events import cloudevents, subjects
    from .caesar_faas.notify import deliver
    from .caesar_faas.notify.settings import load_notify_settings
    from .caesar_faas.ops import ended
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http, logs
    from caesar_faas.errors import ServiceUnavailable
    from caesar_faas.events import cloudevents, subjects
    from caesar_faas.notify import deliver
    from caesar_faas.notify.settings import load_notify_settings
    from caesar_faas.ops import ended


@http.authenticated("POST", system=True)
def handle(req: http.Request, svc, who):
    try:
        event = cloudevents.from_http(dict(req.headers), req.body)
    except ValueError as exc:
        raise http.BadRequest(str(exc), code="not_a_cloudevent") from exc
    if event.get("type") != subjects.event_type(subjects.JOBS_FINISHED):
        raise http.BadRequest(f"unexpected event type {event.get('type')!r}", code="unexpected_event")
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    job_id = data.get("job_id")
    if not isinstance(job_id, str):
        raise http.BadRequest("the event carries no job_id", code="invalid_event")
    logs.bind(job_id=job_id)
    ended.record_end(svc.store, job_id)  # the metrics' end-of-job counters, once per job
    result = deliver.on_finished(svc.store, svc.settings, load_notify_settings(svc.settings), job_id)
    if result["retry"]:
        raise ServiceUnavailable("a notification could not be delivered yet; it will be retried",
                                 code="notify_retry", channels=result["channels"])
    return http.respond(200, {"result": result})
