"""The UWS 1.1 resource tree of one app, below /function/uws/<app>/ (the `uws` function):

  availability, capabilities              VOSI (public: no token needed)
  jobs                                    GET list (PHASE, AFTER, LAST) | POST create -> 303
  jobs/<id>                               GET job (WAIT, PHASE) | DELETE, POST ACTION=DELETE -> 303 list
  jobs/<id>/phase                         GET text | POST PHASE=RUN|ABORT -> 303 job
  jobs/<id>/executionduration             GET text | POST EXECUTIONDURATION=s -> 303 job
  jobs/<id>/destruction                   GET text | POST DESTRUCTION=iso -> 303 job
  jobs/<id>/error                         GET text/plain detail
  jobs/<id>/parameters, results           GET uws:parameters, uws:results
  jobs/<id>/results/<result id>           GET -> 303 to the signed URL
  jobs/<id>/owner, quote                  GET text
Each route parses, calls uws.service, and shapes the answer.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest
from ..http import Request, caller
from ..ids import iso_epoch
from . import documents, params, service
from .answers import form_pairs, no_route, only, query_pairs, see_other, text, xml
from .phases import phase_of


def route(req: Request) -> Any:
    from ..runtime import services

    svc = services()
    if not req.parts:
        raise no_route(req)
    app, rest = req.parts[0], req.parts[1:]
    spec = service.app_spec(app)
    if rest in (["availability"], ["capabilities"]):
        only(req, "GET")
        if rest[0] == "availability":
            available, note = _availability(svc)
            return xml(documents.availability_document(available, note))
        return xml(documents.capabilities_document(service.base_url(svc.settings, app), app,
                                                   " ".join(spec.description.split())))
    principal = caller(req, svc.settings)
    who = service.Caller(principal.owner, principal.is_admin)
    if not rest or rest[0] != "jobs" or len(rest) > 4:
        raise no_route(req)
    if len(rest) == 1:
        return _job_list(req, svc, who, app)
    job_id = rest[1]
    if len(rest) == 2:
        return _job(req, svc, who, app, job_id)
    return _job_part(req, svc, who, app, job_id, rest[2:])


def _availability(svc: Any) -> tuple[bool, str]:
    failed = []
    for name, probe in (("store", svc.store.ping), ("storage", svc.storage.ping), ("event bus", svc.bus.ping)):
        try:
            probe()
        except Exception:  # noqa: BLE001 - reported as unavailable, never raised
            failed.append(name)
    if failed:
        return False, f"not accepting jobs: the {', '.join(failed)} cannot be reached"
    return True, "accepting jobs"


def _job_list(req: Request, svc: Any, who: service.Caller, app: str) -> Any:
    only(req, "GET", "POST")
    if req.method == "POST":
        job = service.create(svc, who, app, form_pairs(req))
        return see_other(service.job_url(svc.settings, app, job["id"]))
    pairs = query_pairs(req)
    phase_filter = [value.strip().upper() for name, value in pairs if name.lower() == "phase"]
    after = last = None
    for name, value in pairs:
        key = name.lower()
        if key == "after":
            after = params.parse_time(name, value)
        elif key == "last":
            if not value.strip().isdigit():
                raise params.bad(name, f"must be a whole number >= 0, got {value!r}")
            last = int(value)
    jobs = service.list_jobs(svc, who, app, phase_filter=phase_filter, after=after, last=last)
    return xml(documents.jobs_document(service.view(svc, job, with_results=False) for job in jobs))


def _job(req: Request, svc: Any, who: service.Caller, app: str, job_id: str) -> Any:
    only(req, "GET", "POST", "DELETE")
    if req.method == "GET":
        return xml(documents.job_document(service.view(svc, _waited(req, svc, who, app, job_id))))
    if req.method == "POST":
        action = params.form_value(form_pairs(req), "ACTION")
        if action is None or action[1].strip().upper() != "DELETE":
            raise BadRequest("POST to a job takes ACTION=DELETE", option="ACTION")
    service.delete(svc, who, app, job_id)
    return see_other(f"{service.base_url(svc.settings, app)}/jobs")


def _waited(req: Request, svc: Any, who: service.Caller, app: str, job_id: str) -> dict[str, Any]:
    fields = params.unique(query_pairs(req))
    if "wait" not in fields:
        return service.load(svc, who, app, job_id)
    name, value = fields["wait"]
    try:
        seconds = int(value.strip())
    except ValueError as exc:
        raise params.bad(name, f"must be a whole number of seconds (-1: as long as allowed), got {value!r}") from exc
    phase = fields["phase"][1].strip().upper() if "phase" in fields else None
    return service.wait(svc, who, app, job_id, seconds, phase)


_SETTERS = {
    "phase": ("PHASE", service.set_phase),
    "executionduration": ("EXECUTIONDURATION", service.set_execution_duration),
    "destruction": ("DESTRUCTION", service.set_destruction),
}


def _job_part(req: Request, svc: Any, who: service.Caller, app: str, job_id: str, part: list[str]) -> Any:
    name = part[0]
    if name == "results" and len(part) == 2:
        only(req, "GET")
        return see_other(service.result_href(svc, service.load(svc, who, app, job_id), part[1]))
    if len(part) != 1:
        raise no_route(req)
    if name in _SETTERS and req.method == "POST":
        field, setter = _SETTERS[name]
        given = params.form_value(form_pairs(req), field)
        if given is None:
            raise BadRequest(f"POST {name} takes the parameter {field}", option=field)
        setter(svc, who, app, job_id, given[1])
        return see_other(service.job_url(svc.settings, app, job_id))
    only(req, "GET", *(("POST",) if name in _SETTERS else ()))
    job = service.load(svc, who, app, job_id)
    if name == "phase":
        return text(phase_of(job))
    if name == "executionduration":
        return text(str(int(job.get("timeout") or 0)))
    if name == "destruction":
        return text(iso_epoch(service.destruction_of(job)) or "")
    if name == "quote":
        return text(service.quote_of(job) or "")
    if name == "owner":
        return text(job["owner"])
    if name == "error":
        return text(service.error_text(job))
    if name == "parameters":
        return xml(documents.parameters_document(service.parameters_of(job)))
    if name == "results":
        return xml(documents.results_document(service.results_of(svc, job)))
    raise no_route(req)

