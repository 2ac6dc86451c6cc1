"""Job submission (caesar-rest `POST /job`): strict validation, then an outbox.

The job is stored PENDING first and `caesar.jobs.submitted` is published after; when the publish
fails the request still succeeds (the job is safely stored) and the monitor re-publishes it.
Nothing is stored or published unless every check passed.
"""

from __future__ import annotations

import logging
from typing import Any

from ..apps.registry import get_app
from ..apps.validation import effective, ignored_given, validate_options
from ..config import Settings
from ..errors import BadRequest
from ..events.subjects import JOBS_SUBMITTED
from ..ids import epoch, is_id, new_id
from ..logs import bind, bound, request_id
from ..ops.drain import require_accepting
from ..quotas import check_submit, limits_for
from ..store.base import Store
from .records import COLLECTION, new_job, public_view
from .states import PENDING

log = logging.getLogger(__name__)

BODY_KEYS = frozenset({"app", "job_inputs", "data_inputs", "tag", "timeout", "notify"})
INPUTFILE = "inputfile"  # caesar-rest also accepts the file id inside job_inputs
MAX_TAG = 128
QUEUED_STATUS = "Submitted: waiting for dispatch"
DELAYED_STATUS = "Submitted: dispatch delayed (event bus unavailable), it will be retried automatically"


def submitted_event_id(job_id: str) -> str:
    """Stable id: a re-publish of the same submission inside JetStream's window is dropped."""
    return f"{job_id}-submitted"


def _bad(message: str, option: str, code: str = "bad_request") -> BadRequest:
    return BadRequest(message, code=code, option=option)


def _check_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="bad_request")
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(BODY_KEYS))})", unknown[0])
    return body


def _app_spec(body: dict[str, Any], settings: Settings) -> Any:
    name = body.get("app")
    if not isinstance(name, str) or not name:
        raise _bad("'app' is required and must be a string", "app")
    spec = get_app(name)
    if spec is None:
        raise _bad(f"unknown app {name!r}", "app", code="unknown_app")
    if settings.job_backend == "local" and not spec.runs_locally:
        raise _bad(f"app {name!r} runs only from its container image, which needs the kubernetes job "
                   "backend (CAESAR_JOB_BACKEND=kubernetes); this service uses the local backend",
                   "app", code="app_unavailable")
    return spec


def _split_inputs(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(job_inputs without `inputfile`, the file id) from data_inputs or job_inputs.inputfile."""
    job_inputs = body.get("job_inputs", {})
    if job_inputs is None:
        job_inputs = {}
    if not isinstance(job_inputs, dict):
        raise _bad("'job_inputs' must be a JSON object of option values", "job_inputs")
    options_in = {k: v for k, v in job_inputs.items() if k != INPUTFILE}
    from_body = body.get("data_inputs")
    from_inputs = job_inputs.get(INPUTFILE)
    if from_body is not None and from_inputs is not None and from_body != from_inputs:
        raise _bad("'data_inputs' and job_inputs.inputfile name different files", "data_inputs")
    file_id = from_body if from_body is not None else from_inputs
    option = "data_inputs" if from_body is not None else INPUTFILE
    if file_id is None:
        raise _bad("'data_inputs' (the id of an uploaded file) is required", "data_inputs")
    if not isinstance(file_id, str):
        raise _bad(f"'{option}' must be a file id string", option)
    return options_in, file_id


def _input_file(store: Store, owner: str, file_id: str, option: str) -> dict[str, Any]:
    """The input reference; another user's file is reported exactly like a missing one."""
    record = store.get("files", file_id) if is_id(file_id) else None
    if record is None or record.get("owner") != owner:
        raise _bad(f"unknown file {file_id!r}", option, code="invalid_file")
    status = record.get("status")
    if status != "ready":
        reason = "is still being uploaded or checked" if status == "pending" else "is not a valid image"
        raise _bad(f"file {file_id!r} {reason} (status {status!r})", option, code="invalid_file")
    return {"file_id": file_id, "key": record["key"], "filename": record.get("filename_orig") or file_id,
            "sha256": record.get("sha256")}  # the runner checks the bytes it fetches against it


def _timeout(body: dict[str, Any]) -> int | None:
    """The asked timeout (None: the app's default). The upper bound is the caller's own maximum,
    checked by quotas.check_submit (413 quota_exceeded, as for every per-user limit)."""
    value = body.get("timeout")
    if value is None:
        return None
    # bool is an int subclass in Python: refuse it like any other silent cast
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad("'timeout' must be an integer number of seconds", "timeout")
    if value < 1:
        raise _bad("'timeout' must be at least 1 second", "timeout")
    return value


def _tag(body: dict[str, Any]) -> str:
    tag = body.get("tag")
    if tag is None:
        return ""
    if not isinstance(tag, str):
        raise _bad("'tag' must be a string", "tag")
    if len(tag) > MAX_TAG:
        raise _bad(f"'tag' must be at most {MAX_TAG} characters", "tag")
    if any(ord(c) < 32 or ord(c) == 0x7F for c in tag):  # the upload route's rule (files.clean_tag)
        raise _bad("'tag' must hold printable characters only", "tag")
    return tag


def _notify(body: dict[str, Any]) -> dict[str, str] | None:
    from ..notify.settings import webhook_allow
    from ..notify.targets import parse_notify

    if body.get("notify") is None:
        return None
    return parse_notify(body["notify"], webhook_allow())


def submit(store: Store, bus: Any, settings: Settings, principal_owner: str, body: Any, *,
           hold: bool = False, held_status: str = "Pending: waiting to be started",
           destruction: float | None = None) -> dict[str, Any]:
    """Validate a caesar-rest submission, store the job PENDING, publish `caesar.jobs.submitted`.

    Returns the public view (answer 202), with `ignored_options` when options without effect
    here were given (apps/spec.py `ignored`). Raises BadRequest (400, naming the offending field or
    option in `option`) or the quota error of `check_submit`, or 503 while the service drains;
    then nothing was stored.
    With `hold` (a UWS job created without PHASE=RUN) the job is stored PENDING with `hold: True`
    and nothing is published: no backend takes it until uws.service.run releases it.
    `destruction` (epoch s, UWS) fixes when the job and its products are destroyed."""
    require_accepting(store)
    body = _check_body(body)
    spec = _app_spec(body, settings)
    options_in, file_id = _split_inputs(body)
    options = effective(spec, validate_options(spec, options_in))  # no-ops never reach the finder
    input_ref = _input_file(store, principal_owner, file_id,
                            "data_inputs" if body.get("data_inputs") is not None else INPUTFILE)
    timeout = _timeout(body)
    tag = _tag(body)
    notify = _notify(body)
    if timeout is None:  # the app's default, lowered to the caller's maximum
        timeout = min(int(spec.default_timeout or settings.default_job_timeout),
                      limits_for(store, principal_owner, settings).max_job_timeout)
    timeout = check_submit(store, principal_owner, timeout, settings)

    job_inputs = dict(body.get("job_inputs") or {})
    job = new_job(job_id=new_id(), owner=principal_owner, app=spec.name, tag=tag, options=options,
                  job_inputs=job_inputs, input_ref=input_ref, timeout=timeout, now=epoch(),
                  status=held_status if hold else QUEUED_STATUS)
    if hold:
        job["hold"] = True
    if destruction is not None:
        job["destruction"] = job["expires"] = destruction
    if notify:
        job.update(notify=notify, notify_pending=True)  # notify/deliver.py sends them at the end
    job["request_id"] = request_id()  # carried to the dispatcher, the runner and its events
    store.insert(COLLECTION, job)  # the outbox: stored first, published second
    bind(job_id=job["id"], app=spec.name, file_id=file_id)
    log.info("job %s submitted (%s on file %s)", job["id"], spec.name, file_id)

    if not hold and not publish_submitted(bus, job):
        changed = store.update(COLLECTION, job["id"], {"status": DELAYED_STATUS}, expect={"state": PENDING})
        job = changed or store.get(COLLECTION, job["id"]) or job
    view = public_view(job)
    ignored = ignored_given(spec, options_in)
    if ignored:  # accepted for caesar-rest scripts, without effect: say so
        view["ignored_options"] = ignored
    return view


def publish_submitted(bus: Any, job: dict[str, Any], event_id: str | None = None) -> bool:
    """Publish the submission event; False (logged, not raised) when the bus is unreachable."""
    data = {"job_id": job["id"], "owner": job["owner"], "app": job["app"]}
    try:
        with bound(request_id=job.get("request_id")):  # also when the monitor publishes it again
            bus.publish(JOBS_SUBMITTED, data, about=job["id"],
                        event_id=event_id or submitted_event_id(job["id"]))
        return True
    except Exception as exc:  # noqa: BLE001 - any bus failure leaves the job for the monitor
        log.warning("publishing %s for job %s failed: %s", JOBS_SUBMITTED, job["id"], type(exc).__name__)
        return False
