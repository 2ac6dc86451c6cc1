"""monitor (cron): reconcile active jobs with the backend, re-publish stuck work, enforce
deadlines and expiry, expire unfinished uploads, compute accounting. Safe to repeat.

The OpenFaaS cron-connector and Knative's PingSource cannot send credentials, so a trigger
without a token is accepted: it can only start this idempotent maintenance (at most once per
maintenance.MIN_INTERVAL seconds) and learns nothing but whether it ran. Callers with the system
or admin role get the summary."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import http, internal_auth, maintenance, runtime
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import http, internal_auth, maintenance, runtime


@http.endpoint
def handle(req: http.Request):
    import time

    svc = runtime.services()
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
