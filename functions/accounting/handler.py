"""accounting: GET / the caller's own usage (admins: ?user=<id> or ?all=1); GET /apps per-app
figures (admin); GET|PUT /limits/<user> per-user quota overrides (admin); GET /service whether
the service accepts new work, PUT /service {"accepting", "reason"?, "retry_after"?} (admin: drain)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import accounting, http, quotas
    from .caesar_faas.auth.principal import is_valid_owner
    from .caesar_faas.errors import BadRequest, Forbidden
    from .caesar_faas.ops import drain
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import accounting, http, quotas
    from caesar_faas.auth.principal import is_valid_owner
    from caesar_faas.errors import BadRequest, Forbidden
    from caesar_faas.ops import drain


def _admin(who) -> None:
    if not who.is_admin:
        raise Forbidden("this figure is for administrators", code="admin_only")


@http.authenticated()
def handle(req: http.Request, svc, who):
    parts = req.parts
    if parts in ([], ["apps"]) and req.method != "GET":
        raise http.method_not_allowed(req, "GET")
    if not parts:
        user = req.arg("user")
        if user and user != who.owner or req.flag("all"):
            _admin(who)
        # Every view reads the running totals the store keeps: O(users + apps), never O(records).
        if req.flag("all"):
            return http.respond(200, accounting.compute(svc.store, _now()))
        owner = user or who.owner
        snapshot = accounting.compute(svc.store, _now(), owner=owner)
        return http.respond(200, {**accounting.for_user(snapshot, owner),
                                  "limits": quotas.limits_for(svc.store, owner, svc.settings).as_dict(),
                                  "usage": quotas.usage(svc.store, owner).as_dict()})
    if parts == ["apps"]:
        _admin(who)
        snapshot = accounting.compute(svc.store, _now())
        return http.respond(200, {"apps": snapshot["apps"], "computed": snapshot["generated"]})
    if parts == ["service"]:
        if req.method == "PUT":
            _admin(who)
            return http.respond(200, drain.set_state(svc.store, req.json(), who.owner))
        if req.method != "GET":
            raise http.method_not_allowed(req, "GET, PUT")
        return http.respond(200, drain.state(svc.store))
    if len(parts) == 2 and parts[0] == "limits":
        _admin(who)
        if not is_valid_owner(parts[1]):  # the rule token subjects follow: no limits for impossible users
            raise BadRequest("not a valid user id", code="invalid_user")
        if req.method == "PUT":
            quotas.set_limits(svc.store, parts[1], req.json())
        elif req.method != "GET":
            raise http.method_not_allowed(req, "GET, PUT")
        return http.respond(200, {"user": parts[1],
                                  "limits": quotas.limits_for(svc.store, parts[1], svc.settings).as_dict()})
    raise http.not_found("route")


def _now() -> float:
    import time

    return time.time()
