"""files: GET / lists the caller's files; GET /<id> metadata; GET /<id>/content the bytes
(or a redirect to a signed URL with ?redirect=1); DELETE /<id> removes object and record.
caesar-rest shapes: GET /ids answers {"file_ids": [...]}; GET|POST /<id>/delete deletes.
/caesar-rest/... (the caesar-rest aliases fileids, download, delete): caesar-rest's shapes."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas import caesar_rest, downloads, files, http
    from .caesar_faas.caesar_rest import files as caesar_rest_files
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas import caesar_rest, downloads, files, http
    from caesar_faas.caesar_rest import files as caesar_rest_files


@http.authenticated()
def handle(req: http.Request, svc, who):
    if caesar_rest.marked(req):
        return caesar_rest_files.files(req, svc, who)
    parts = req.parts
    if not parts:
        if req.method != "GET":
            raise http.method_not_allowed(req, "GET")
        return http.respond(200, files.list_files(
            svc, who.owner, who.is_admin, limit=req.int_arg("limit", 100), cursor=req.arg("cursor") or None,
            all_users=req.flag("all"), tag=req.arg("tag")))
    if parts == ["ids"]:
        if req.method != "GET":
            raise http.method_not_allowed(req, "GET")
        return http.respond(200, {"file_ids": files.all_ids(svc, who.owner)})
    if len(parts) == 2 and parts[1] == "delete":
        if req.method not in ("GET", "POST"):
            raise http.method_not_allowed(req, "GET, POST")
        files.delete_file(svc, who.owner, who.is_admin, parts[0])
        return http.respond(200, {"uuid": parts[0], "status": "File deleted"})
    if len(parts) == 1:
        if req.method == "GET":
            return http.respond(200, files.public_view(files.get_file(svc, who.owner, who.is_admin, parts[0])))
        if req.method == "DELETE":
            files.delete_file(svc, who.owner, who.is_admin, parts[0])
            return http.respond(200, {"uuid": parts[0], "status": "File deleted"})
        raise http.method_not_allowed(req, "GET, DELETE")
    if len(parts) == 2 and parts[1] == "content":
        if req.method != "GET":
            raise http.method_not_allowed(req, "GET")
        record = files.ready_file(svc, who.owner, who.is_admin, parts[0])
        return downloads.serve(svc, record["key"], record["filename_orig"], "application/fits",
                               redirect=req.flag("redirect"), link=req.flag("link"))
    raise http.not_found("route")
