"""monitor (cron): reconcile active jobs with the backend, re-publish stuck work, enforce
deadlines and expiry, expire unfinished uploads, compute accounting. Safe to repeat.

The OpenFaaS cron-connector and Knative's PingSource cannot send credentials, so a trigger
without a token is accepted: it can only start this idempotent maintenance (at most once per
maintenance.MIN_INTERVAL seconds) and learns nothing but whether it ran. Callers with the system
or admin role get the summary. GET /metrics: the Prometheus exposition (admin or metrics role)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http, internal_auth, maintenance, runtime
    from .caesar_faas.errors import Forbidden
    from .caesar_faas.ops import metrics
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http, internal_auth, maintenance, runtime
    from caesar_faas.errors import Forbidden
    from caesar_faas.ops import metrics


@http.endpoint
def handle(req: http.Request):
    import time

    svc = runtime.services()
    if req.parts == ["metrics"]:
        return _metrics(req, svc)
    if req.parts:
        raise http.not_found("route")
    if req.method != "POST":  # a run changes state: never on a GET (prefetchers, crawlers)
        raise http.method_not_allowed(req, "POST")
    # Only a request without credentials is an anonymous trigger; bad credentials are a 401.
    who = http.caller(req, svc.settings) if req.header("Authorization") else None
    if who is not None:
        internal_auth.require_system(who)
    if not maintenance.claim_run(svc.store, time.time()):
        return http.respond(200, {"ran": False, "reason": f"ran less than {maintenance.min_interval():.0f} s ago"})
    summary = maintenance.run(svc)
    return http.respond(200, {"ran": True, **({"summary": summary} if who is not None else {})})


def _metrics(req: http.Request, svc):
    """The Prometheus exposition, for a token with the admin or the metrics role."""
    if req.method != "GET":
        raise http.method_not_allowed(req, "GET")
    who = http.caller(req, svc.settings)
    if not (who.is_admin or "metrics" in who.roles):
        raise Forbidden("the metrics need a token with the admin or metrics role", code="metrics_role")
    body = metrics.render(svc.store, svc.settings.nats_client_url)
    return http.respond(200, body.decode(), {"Content-Type": metrics.CONTENT_TYPE})
