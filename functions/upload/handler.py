"""upload: POST / stores a FITS image sent inline (multipart field `file`, optional `tag`);
POST / with a JSON body {filename, size, sha256?, tag?, part_size?, part_crc32?} starts a large
presigned upload; POST /<id>/complete finishes one; GET / tells the upload limits; GET /<id>
where an unfinished one stands (parts received, fresh URLs for the rest: a client resumes).
/caesar-rest (the caesar-rest alias POST /caesar/api/v1.0/upload): caesar-rest's shape, 200."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import caesar_rest, files, http, uploads
    from .caesar_faas.caesar_rest import files as caesar_rest_files
    from .caesar_faas.ops import drain
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import caesar_rest, files, http, uploads
    from caesar_faas.caesar_rest import files as caesar_rest_files
    from caesar_faas.ops import drain


@http.authenticated()
def handle(req: http.Request, svc, who):
    if req.method == "POST" and req.parts[1:] != ["complete"]:
        # New uploads only (a large upload whose parts are sent may complete), and before the
        # body is read: a refused upload costs nothing.
        drain.require_accepting(svc.store)
    if caesar_rest.marked(req):
        return caesar_rest_files.upload(req, svc, who)
    if len(req.parts) > 2 or len(req.parts) == 2 and req.parts[1] != "complete":
        raise http.not_found("route")
    if len(req.parts) == 1:  # where an unfinished upload stands
        if req.method != "GET":
            raise http.method_not_allowed(req, "GET")
        return http.respond(200, uploads.resume(svc, who, req.parts[0]))
    if len(req.parts) == 2:
        if req.method != "POST":
            raise http.method_not_allowed(req, "POST")
        return http.respond(200, uploads.complete(svc, who, req.parts[0], req.json()))
    if req.method == "GET":
        return http.respond(200, uploads.limits(svc.settings))
    if req.method != "POST":
        raise http.method_not_allowed(req, "GET, POST")
    if req.header("Content-Type").lower().startswith("application/json"):
        return http.respond(201, uploads.create(svc, who, req.json()))
    limit = svc.settings.max_inline_upload
    record = files.store_inline(
        svc, who.owner, req.stream, req.header("Content-Type"), req.header("Content-Length") or None,
        limit_message=(f"the body is larger than the inline upload limit ({limit} bytes): send large images "
                       "through the presigned route, POST /function/upload with a JSON body "
                       '{"filename": ..., "size": ...} (README, "Large uploads")'))
    return http.respond(201, files.public_view(record))
