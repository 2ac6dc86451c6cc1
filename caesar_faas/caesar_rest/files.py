"""caesar-rest's file routes: POST /upload, GET /fileids, GET|POST /download[/<id>],
GET|POST /delete/<id>, over the same library as the native upload and files functions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .. import downloads
from .. import files as library
from ..errors import Conflict, NotFound
from ..http import Request, method_not_allowed, redirect, respond
from . import PREFIX, forms, route, shapes
from .errors import CaesarRestError, file_not_found

MAX_LISTED = 10000  # newest first; caesar-rest listed everything, a user's quota stays far below this


def upload(req: Request, svc: Any, who: Any) -> dict[str, Any]:
    """POST /upload: multipart field `file` (and `tag`), 200 with caesar-rest's keys."""
    if route(req):
        raise NotFound("route not found", code="not_found")
    if req.method != "POST":
        raise method_not_allowed(req, "POST")
    limit = svc.settings.max_inline_upload
    record = library.store_inline(
        svc, who.owner, req.stream, req.header("Content-Type"), req.header("Content-Length") or None,
        limit_message=(f"the file is larger than the inline upload limit ({limit} bytes): send large images "
                       "through POST /function/upload with a JSON body (README, \"Large uploads\")"))
    return respond(200, shapes.upload(record))


def files(req: Request, svc: Any, who: Any) -> Any:
    parts = route(req)
    if parts == ["ids"]:
        if req.method != "GET":
            raise method_not_allowed(req, "GET")
        page = svc.store.page("files", {"owner": who.owner, "status": "ready"}, limit=MAX_LISTED)
        return respond(200, shapes.file_ids(page.items))
    if parts == ["download"]:
        return _download_form(req)
    if len(parts) == 2 and parts[0] in ("download", "delete"):
        if req.method not in ("GET", "POST"):
            raise method_not_allowed(req, "GET, POST")
        return _download(svc, who, parts[1]) if parts[0] == "download" else _delete(svc, who, parts[1])
    raise NotFound("route not found", code="not_found")


def _download_form(req: Request) -> dict[str, Any]:
    """GET ?uuid=<id> or POST with form field uuid: 302 to /download/<id>, as caesar-rest does."""
    if req.method == "GET":
        file_id = req.arg("uuid")
    elif req.method == "POST":
        file_id = forms.field(req, "uuid") or req.arg("uuid")
    else:
        raise method_not_allowed(req, "GET, POST")
    if not file_id:
        raise CaesarRestError(400, "No file uuid given!")
    # A path under our own prefix, the id quoted: never a redirect to anywhere else.
    return redirect(f"{PREFIX}/download/{quote(file_id, safe='')}")


def _download(svc: Any, who: Any, file_id: str) -> Any:
    try:
        record = library.ready_file(svc, who.owner, who.is_admin, file_id)
        return downloads.stream(svc, record["key"], record.get("filename_orig") or file_id, "application/fits")
    except (NotFound, Conflict) as exc:  # missing, another user's, not ready, bytes gone
        raise file_not_found(file_id) from exc


def _delete(svc: Any, who: Any, file_id: str) -> dict[str, Any]:
    try:
        library.delete_file(svc, who.owner, who.is_admin, file_id)
    except NotFound as exc:
        raise file_not_found(file_id) from exc
    return respond(200, {"status": shapes.DELETED})

