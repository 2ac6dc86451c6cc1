"""The UWS operations on the job store, each a thin use of caesar_faas.jobs.

A UWS job is an ordinary job record of the app; what UWS adds is kept in the record too:
`hold` (PENDING until PHASE=RUN), `destruction` (epoch s, mirrored into `expires` so the
monitor's indexed expiry query finds it), `deleted` (asked to be destroyed: hidden here at once,
removed with its products by the monitor once no backend holds it). Every change is a
compare-and-set on the job's state, like every other change of a job.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from ..apps.registry import get_app
from ..apps.spec import AppSpec
from ..errors import BadRequest, Conflict, NotFound
from ..ids import epoch, iso_epoch
from ..jobs import control, submit
from ..jobs.records import COLLECTION
from ..jobs.states import PENDING, TERMINAL
from ..longpoll import wait_for_change
from ..quotas import limits_for
from ..runner.contract import CATALOG_VOT, MANIFEST, output_prefix
from ..runner.manifest import media_type
from ..storage.base import ObjectNotFound
from . import fetch, params, phases
from .documents import ErrorView, JobView, ResultView

log = logging.getLogger(__name__)

MAX_WAIT = 60  # seconds a blocking GET may hold (UWS 1.1 §2.2.1.1 lets the service choose)
DEFAULT_LAST = 500  # the longest job list one GET answers (UWS LAST may ask for fewer)
RESULT_URL_TTL = 3600  # signed result URLs: long enough to fetch, short enough to leak little
CAS_RETRIES = 5
HELD_STATUS = "Pending: waiting for PHASE=RUN (UWS)"
# The UWS result id of the catalogue VOTable: TAP's name for the main result, so generic UWS
# clients (pyvo's AsyncTAPJob.fetch_result) read the catalogue. Other products keep their names.
MAIN_RESULT = "result"


@dataclass(frozen=True)
class Caller:
    owner: str
    is_admin: bool


def app_spec(app: str) -> AppSpec:
    spec = get_app(app)
    if spec is None:
        raise NotFound(f"no app named {app!r}", code="unknown_app")
    return spec


def base_url(settings: Any, app: str) -> str:
    return f"{settings.public_url.rstrip('/')}/function/uws/{app}"


def job_url(settings: Any, app: str, job_id: str) -> str:
    return f"{base_url(settings, app)}/jobs/{job_id}"


# -- reading ------------------------------------------------------------------------------------

def load(svc: Any, who: Caller, app: str, job_id: str) -> dict[str, Any]:
    """The job when the caller may see it through this app's service, else 404 (another user's,
    another app's and a deleted job all answer like a missing one)."""
    job = control.load_job(svc.store, who.owner, job_id, admin=who.is_admin)
    if job.get("app") != app or job.get("deleted"):
        raise NotFound(f"job {job_id} not found", code="job_not_found")
    return job


def wait(svc: Any, who: Caller, app: str, job_id: str, seconds: int, phase: str | None) -> dict[str, Any]:
    """UWS 1.1 blocking GET: hold while the job is in an active phase equal to `phase` (or to
    its current phase when none is given), at most MAX_WAIT s (WAIT=-1 means that maximum)."""
    job = load(svc, who, app, job_id)
    current = phases.phase_of(job)
    if phase is not None and phase not in phases.PHASES:
        raise BadRequest(f"PHASE must be one of {', '.join(phases.PHASES)}", option="PHASE")
    if seconds == 0 or current not in phases.ACTIVE_PHASES or (phase is not None and phase != current):
        return job
    limit = MAX_WAIT if seconds < 0 else min(seconds, MAX_WAIT)
    job = wait_for_change(svc.store, who.owner, who.is_admin, job_id, wait=limit, since=current,
                          key=phases.phase_of)
    if job.get("app") != app or job.get("deleted"):
        raise NotFound(f"job {job_id} not found", code="job_not_found")
    return job


def list_jobs(svc: Any, who: Caller, app: str, *, phase_filter: list[str], after: float | None,
              last: int | None) -> list[dict[str, Any]]:
    """The caller's jobs of this app, newest first (UWS 1.1 §2.2.2.1: PHASE filters OR-ed,
    AFTER on creationTime, LAST the newest N). One indexed page per store query, at most two."""
    unknown = [p for p in phase_filter if p not in phases.PHASES]
    if unknown:
        raise BadRequest(f"unknown PHASE {unknown[0]!r} (one of {', '.join(phases.PHASES)})", option="PHASE")
    limit = DEFAULT_LAST if last is None else min(last, DEFAULT_LAST)
    if limit == 0:
        return []
    # Owner-scoped for everyone (an admin reads any job by its URL, but lists only their own).
    base: dict[str, Any] = {"owner": who.owner, "app": app, "deleted": {"nin": [True]}}
    if after is not None:
        base["created"] = {"gt": after}
    found: dict[str, dict[str, Any]] = {}
    for condition in _phase_conditions(set(phase_filter)):
        for job in svc.store.page(COLLECTION, {**base, **condition}, limit=limit).items:
            found[job["id"]] = job
    jobs = sorted(found.values(), key=lambda j: (j["created"], j["id"]), reverse=True)
    return jobs[:limit]


def _phase_conditions(wanted: set[str]) -> list[dict[str, Any]]:
    """Store conditions whose union is the jobs in any of the wanted phases ([{}]: all jobs)."""
    if not wanted:
        return [{}]
    held, queued = phases.UWS_PENDING in wanted, phases.QUEUED in wanted
    states: set[str] = {PENDING} if held and queued else set()
    conditions: list[dict[str, Any]] = []
    if held != queued:
        only = phases.store_filter(phases.UWS_PENDING if held else phases.QUEUED)
        assert only is not None
        conditions.append(only)
    for phase in wanted - {phases.UWS_PENDING, phases.QUEUED}:
        condition = phases.store_filter(phase)
        if condition is not None:
            states.update(condition["state"]["in"])
    if states:
        conditions.append({"state": {"in": sorted(states)}})
    return conditions


def view(svc: Any, job: dict[str, Any], *, with_results: bool = True) -> JobView:
    settings = svc.settings
    phase = phases.phase_of(job)
    error = None
    if phase == phases.ERROR:
        error = ErrorView(phases.error_type(job), str(job.get("status") or "the job failed"))
    info = [("state", str(job.get("state"))), ("status", str(job.get("status") or "")),
            ("progress", str(job.get("progress") or 0))]
    if job.get("error_class"):
        info.append(("errorClass", str(job["error_class"])))
    return JobView(
        job_id=job["id"], href=job_url(settings, job["app"], job["id"]), run_id=job.get("tag") or None,
        owner=job["owner"], phase=phase, created=_iso(job["created"]), started=iso_epoch(job.get("started")),
        ended=iso_epoch(job.get("finished")), execution_duration=int(job.get("timeout") or 0),
        destruction=iso_epoch(destruction_of(job)), quote=quote_of(job), parameters=parameters_of(job),
        results=results_of(svc, job) if with_results else [], error=error, info=info)


def _iso(ts: float) -> str:
    text = iso_epoch(ts)
    assert text is not None
    return text


def destruction_of(job: dict[str, Any]) -> float | None:
    """When the job and its results are destroyed: the UWS destruction if one was set, else the
    native expiry (known once the job has ended)."""
    return job.get("destruction") or job.get("expires")


def quote_of(job: dict[str, Any]) -> str | None:
    """UWS quote: the latest the job can complete (it is stopped at its execution duration),
    known once it runs; unknown (nil) while it waits and after it ended."""
    if job.get("state") in TERMINAL or job.get("started") is None:
        return None
    return iso_epoch(float(job["started"]) + float(job.get("timeout") or 0))


def parameters_of(job: dict[str, Any]) -> list[tuple[str, str]]:
    """The effective options (defaults filled, unset ones left out) and the input file id."""
    out = [(name, params.render(value)) for name, value in (job.get("options") or {}).items() if value is not None]
    file_id = (job.get("input") or {}).get("file_id")
    if file_id:
        out.append((params.INPUTFILE, file_id))
    return out


def results_of(svc: Any, job: dict[str, Any]) -> list[ResultView]:
    """One result per product of an ended job, from its manifest (one read), each with a signed
    URL: the bytes never pass through the function."""
    if job.get("state") not in TERMINAL or not job.get("products"):
        return []
    prefix = output_prefix(job["owner"], job["id"])
    try:
        entries = json.loads(svc.storage.read_bytes(prefix + MANIFEST))
    except (ObjectNotFound, ValueError):
        entries = []
    out: list[ResultView] = []
    for entry in entries if isinstance(entries, list) else []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or "/" in name:
            continue
        out.append(_result(svc, prefix, name, entry.get("size"), entry.get("media_type")))
    if entries and MANIFEST not in {entry.get("name") for entry in entries if isinstance(entry, dict)}:
        # The manifest lists every other product, not itself.
        try:
            size: int | None = svc.storage.stat(prefix + MANIFEST).size
        except ObjectNotFound:
            size = None
        out.append(_result(svc, prefix, MANIFEST, size, media_type(MANIFEST)))
    out.sort(key=lambda r: r.result_id != MAIN_RESULT)  # the catalogue first
    return out


def _result(svc: Any, prefix: str, name: str, size: Any, mime: Any) -> ResultView:
    url = svc.storage.presign_get(prefix + name, expires=RESULT_URL_TTL, filename=name)
    return ResultView(result_id=MAIN_RESULT if name == CATALOG_VOT else name, href=url,
                      size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                      mime_type=mime if isinstance(mime, str) else media_type(name))


def result_href(svc: Any, job: dict[str, Any], result_id: str) -> str:
    for result in results_of(svc, job):
        if result.result_id == result_id:
            return result.href
    raise NotFound(f"job {job['id']} has no result {result_id!r}", code="result_not_found")


def error_text(job: dict[str, Any]) -> str:
    if phases.phase_of(job) != phases.ERROR:
        raise NotFound(f"job {job['id']} has no error (phase {phases.phase_of(job)})", code="no_error")
    lines = [str(job.get("status") or "the job failed"),
             f"state: {job.get('state')}, error class: {job.get('error_class')}, exit status: {job.get('exit_status')}"]
    if "job.log" in (job.get("products") or []):
        lines.append("The finder's log is the result 'job.log'.")
    return "\n".join(lines) + "\n"


# -- changing -----------------------------------------------------------------------------------

def create(svc: Any, who: Caller, app: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """A new job from the creation parameters: stored PENDING (held unless PHASE=RUN), with the
    same validation and quotas as a native submission."""
    spec = app_spec(app)
    asked = params.creation(spec, pairs)
    settings = svc.settings
    maximum = limits_for(svc.store, who.owner, settings).max_job_timeout
    timeout = None
    if asked.execution_duration is not None:
        timeout = maximum if asked.execution_duration == 0 else min(asked.execution_duration, maximum)
    destruction = None
    if asked.destruction is not None:
        destruction = _check_destruction(asked.destruction, epoch(), timeout or maximum, settings,
                                         name="DESTRUCTION")
    file_id = _input_file_id(svc, who, asked.inputfile or "")
    body: dict[str, Any] = {"app": spec.name, "job_inputs": asked.options, "data_inputs": file_id}
    if asked.runid:
        body["tag"] = asked.runid
    if timeout is not None:
        body["timeout"] = timeout
    try:
        created = submit.submit(svc.store, svc.bus, settings, who.owner, body, hold=not asked.run,
                                held_status=HELD_STATUS, destruction=destruction)
    except BadRequest as exc:
        raise _in_uws_terms(exc) from exc
    return load(svc, who, app, created["job_id"])


# The native submission's field names, as the UWS parameters that carried them.
_UWS_NAMES = {"data_inputs": params.INPUTFILE, "inputfile": params.INPUTFILE, "tag": "RUNID",
              "timeout": "EXECUTIONDURATION"}


def _in_uws_terms(exc: BadRequest) -> BadRequest:
    """A native refusal named after the UWS parameter at fault ("parameter inputfile: ...")."""
    option = exc.extra.get("option")
    if not isinstance(option, str):
        return exc
    name = _UWS_NAMES.get(option, option)
    message = exc.message if exc.message.startswith(f"option '{name}'") else f"parameter {name}: {exc.message}"
    return BadRequest(message, code=exc.code, headers=exc.headers, **{**exc.extra, "option": name})


def _input_file_id(svc: Any, who: Caller, inputfile: str) -> str:
    """A file id as given, or the id of the file fetched from a URL into the caller's storage."""
    if not fetch.is_url(inputfile):
        return inputfile
    from ..files import store_upload

    upload = fetch.fetch_to_spool(inputfile, max_bytes=svc.settings.max_inline_upload,
                                  spool_dir=str(svc.settings.tmp_dir))
    try:
        record = store_upload(svc, who.owner, upload, "uws")
    finally:
        upload.spool.close()
    return str(record["id"])


def set_phase(svc: Any, who: Caller, app: str, job_id: str, value: str) -> dict[str, Any]:
    asked = value.strip().upper()
    if asked == "RUN":
        return run(svc, who, app, job_id)
    if asked == "ABORT":
        job = load(svc, who, app, job_id)
        if job["state"] in TERMINAL and phases.phase_of(job) != phases.UWS_ABORTED:
            raise Conflict(f"job {job_id} already ended ({phases.phase_of(job)}); it cannot be aborted")
        control.cancel(svc.store, svc.bus, who.owner, job_id, admin=who.is_admin, settings=svc.settings)
        return load(svc, who, app, job_id)
    raise BadRequest(f"PHASE must be RUN or ABORT, got {value!r}", option="PHASE")


def run(svc: Any, who: Caller, app: str, job_id: str) -> dict[str, Any]:
    """PHASE=RUN: a held job joins the queue (the outbox as at submit: the record first, the
    event second, the monitor re-publishes if the event is lost). Idempotent: a job already
    queued, running or ended is left as it is."""
    job = load(svc, who, app, job_id)
    if job["state"] != PENDING or not job.get(phases.HOLD):
        return job
    dispatch = dict(job.get("dispatch") or {})
    dispatch["last"] = epoch()
    released = svc.store.update(COLLECTION, job_id, {phases.HOLD: False, "status": submit.QUEUED_STATUS,
                                                     "dispatch": dispatch},
                                expect={"state": PENDING, phases.HOLD: True})
    if released is not None:
        submit.publish_submitted(svc.bus, released)
    return load(svc, who, app, job_id)


def set_execution_duration(svc: Any, who: Caller, app: str, job_id: str, text: str) -> dict[str, Any]:
    """A new execution duration (s; 0 = the caller's maximum, more is lowered to it), only while
    the job has not started: a running job keeps the deadline its runner was given."""
    seconds = params.parse_duration("EXECUTIONDURATION", text)
    maximum = limits_for(svc.store, who.owner, svc.settings).max_job_timeout
    timeout = maximum if seconds == 0 else min(seconds, maximum)
    for _ in range(CAS_RETRIES):
        job = load(svc, who, app, job_id)
        if job["state"] != PENDING:
            raise Conflict(f"job {job_id} has started ({phases.phase_of(job)}): its execution duration is fixed")
        if svc.store.update(COLLECTION, job_id, {"timeout": timeout},
                            expect={"state": PENDING, "backend_ref": None}) is not None:
            return load(svc, who, app, job_id)
    raise Conflict(f"job {job_id} is being started; try again")


def _check_destruction(when: float, now: float, timeout: float, settings: Any, *, name: str) -> float:
    """A destruction instant the service accepts: not in the past; a later one than the job
    could need (its execution duration plus the result lifetime) is lowered to that."""
    if when <= now:
        raise BadRequest(f"parameter {name}: the destruction time is in the past", code="invalid_parameter",
                         option=name)
    return min(when, now + float(timeout) + settings.result_lifetime)


def set_destruction(svc: Any, who: Caller, app: str, job_id: str, text: str) -> dict[str, Any]:
    when = params.parse_time("DESTRUCTION", text)
    for _ in range(CAS_RETRIES):
        job = load(svc, who, app, job_id)
        now = epoch()
        # The latest allowed: the job's own run time left, plus the result lifetime.
        remaining = 0.0 if job["state"] in TERMINAL else float(job.get("timeout") or 0)
        value = _check_destruction(when, now, remaining, svc.settings, name="DESTRUCTION")
        if svc.store.update(COLLECTION, job_id, {"destruction": value, "expires": value},
                            expect={"state": job["state"], "deleted": {"nin": [True]}}) is not None:
            return load(svc, who, app, job_id)
    raise Conflict(f"job {job_id} is changing state; try again")


def delete(svc: Any, who: Caller, app: str, job_id: str) -> None:
    """Destroy a job: aborted if it has not ended, hidden from this face at once, removed with
    its products by the monitor's expiry pass as soon as no backend holds it."""
    job = load(svc, who, app, job_id)
    if job["state"] not in TERMINAL:
        try:
            control.cancel(svc.store, svc.bus, who.owner, job_id, admin=who.is_admin, settings=svc.settings)
        except Conflict:
            pass  # it ended meanwhile: destroy it all the same
    now = epoch()
    for _ in range(CAS_RETRIES):
        job = svc.store.get(COLLECTION, job_id)
        if job is None:
            return
        if svc.store.update(COLLECTION, job_id, {"deleted": True, "destruction": now, "expires": now},
                            expect={"state": job["state"]}) is not None:
            return
    raise Conflict(f"job {job_id} is changing state; try again")
