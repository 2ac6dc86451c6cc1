"""notifier (internal, called by the connector): caesar.jobs.finished -> the end-of-job counters
of the metrics (ops/ended.py), and the job's webhook (a signed CloudEvent) and/or mail, each at
most once. 200 when nothing is left to do; 503 when a channel should be tried again, so the
connector redelivers with backoff (and dead-letters the event after max_deliver)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http
    from .caesar_faas.notify import deliver
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http
    from caesar_faas.notify import deliver


@http.authenticated("POST", system=True)
def handle(req: http.Request, svc, who):
    return http.respond(200, {"result": deliver.handle_event(svc, http.cloud_event(req))})
