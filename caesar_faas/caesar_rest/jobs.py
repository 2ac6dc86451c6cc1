"""caesar-rest's job routes: POST /job, GET /job/<id>/status, GET|POST /job/<id>/cancel,
GET /jobs, over the same library as the native submit, status, cancel and jobs functions."""

from __future__ import annotations

from typing import Any

from ..apps.registry import get_app
from ..errors import BadRequest, Conflict, NotFound
from ..http import Request, method_not_allowed, respond
from ..ids import epoch
from ..jobs import control
from ..jobs import submit as library
from ..jobs.records import COLLECTION
from ..jobs.states import is_terminal
from . import inputs, route, shapes
from .errors import CaesarRestError, job_not_found

MAX_LISTED = 10000  # newest first; caesar-rest listed everything


def submit(req: Request, svc: Any, who: Any) -> dict[str, Any]:
    """POST /job: caesar-rest's body (inputfile as a uuid or a path of one's own upload), 202."""
    if route(req):
        raise NotFound("route not found", code="not_found")
    if req.method != "POST":
        raise method_not_allowed(req, "POST")
    body: dict[str, Any] = {}
    try:
        body = req.json()
        app = body.get("app")
        spec = get_app(app) if isinstance(app, str) else None
        if spec is not None:
            body = inputs.normalise_body(body, spec.input_option)
        view = library.submit(svc.store, svc.bus, svc.settings, who.owner, body)
    except BadRequest as exc:
        # caesar-rest's refused-submission keys around the library's error (code, option, text)
        raise CaesarRestError(exc.http_status, exc.message, error=exc.code, **exc.extra,
                              app=body.get("app") if isinstance(body.get("app"), str) else "",
                              **shapes.submit_refused()) from exc
    return respond(202, shapes.submitted(view))


def status(req: Request, svc: Any, who: Any) -> dict[str, Any]:
    parts = route(req)
    if len(parts) != 1:
        raise NotFound("route not found", code="not_found")
    if req.method != "GET":
        raise method_not_allowed(req, "GET")
    job = _job(svc, who, parts[0], pid="", state="")
    return respond(200, shapes.status(job, epoch()))


def cancel(req: Request, svc: Any, who: Any) -> dict[str, Any]:
    """GET|POST /job/<id>/cancel: ABORTED, or caesar-rest's 'already completed' text (200)."""
    parts = route(req)
    if len(parts) != 1:
        raise NotFound("route not found", code="not_found")
    if req.method not in ("GET", "POST"):
        raise method_not_allowed(req, "GET, POST")
    job_id = parts[0]
    try:
        control.cancel(svc.store, svc.bus, who.owner, job_id, admin=who.is_admin, settings=svc.settings)
    except NotFound as exc:
        raise job_not_found(job_id, who.owner) from exc
    except Conflict:
        job = _job(svc, who, job_id)
        if is_terminal(job["state"]):  # an ABORTED job is no conflict: cancel is idempotent
            return respond(200, shapes.already_completed(job))
        raise  # still changing state: the native 409 says to try again
    return respond(200, {"status": shapes.CANCELED})


def jobs(req: Request, svc: Any, who: Any) -> dict[str, Any]:
    if route(req):
        raise NotFound("route not found", code="not_found")
    if req.method != "GET":
        raise method_not_allowed(req, "GET")
    page = svc.store.page(COLLECTION, {"owner": who.owner}, limit=MAX_LISTED)
    return respond(200, shapes.job_list(page.items, epoch(), svc.settings.job_backend))


def _job(svc: Any, who: Any, job_id: str, **not_found_fields: Any) -> dict[str, Any]:
    try:
        return control.load_job(svc.store, who.owner, job_id, admin=who.is_admin)
    except NotFound as exc:
        raise job_not_found(job_id, who.owner, job_id=job_id, **not_found_fields) from exc

