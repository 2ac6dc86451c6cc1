"""describe: GET / lists the apps; GET /<app> answers its options in caesar-rest's format.
/caesar-rest[/<app>] (the caesar-rest aliases apps, app/<name>/describe): caesar-rest's shapes."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import caesar_rest, http
    from .caesar_faas.apps import registry
    from .caesar_faas.caesar_rest import apps as caesar_rest_apps
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import caesar_rest, http
    from caesar_faas.apps import registry
    from caesar_faas.caesar_rest import apps as caesar_rest_apps


@http.authenticated("GET")
def handle(req: http.Request, svc, who):
    if caesar_rest.marked(req):
        return caesar_rest_apps.describe(req, svc, who)
    if not req.parts:
        return http.respond(200, {"apps": [spec.name for spec in registry.list_apps()]})
    spec = registry.get_app(req.parts[0]) if len(req.parts) == 1 else None
    if spec is None:
        raise http.not_found("app")
    return http.respond(200, registry.describe(spec))
