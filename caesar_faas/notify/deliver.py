"""What the notifier does with one `caesar.jobs.finished`: for each channel the job asked for
(webhook, email), send the job's end at most once.

Each channel keeps a small record on the job, `notified_<channel>` = {state, status, attempts,
at, detail}, changed only by compare-and-set on (status, attempts). A delivery first claims the
channel (status "sending"), then sends, then records the outcome:
  sent       delivered (2xx / accepted by the mail server): never sent again;
  refused    the target refused for good (a 4xx, a redirect, a target that became non-public):
             not retried;
  retry      worth trying again (5xx, 429, timeout, unreachable): the notifier answers 503 and the
             connector delivers the event again with backoff;
  failed     still failing after max_attempts: given up.
A claim older than CLAIM_TTL (the notifier died while sending) may be taken over. Two copies of
the event arriving together: one wins the claim, the other answers 503 and, delivered again,
finds the channel sent. (A receiver that got the POST but whose answer was lost gets it again:
it can drop the repeat by the CloudEvent id, which is the same for every delivery.)"""

from __future__ import annotations

import logging
from typing import Any

from ..config import Settings
from ..errors import BadRequest, ServiceUnavailable
from ..ids import epoch
from ..jobs.records import COLLECTION, public_view
from ..jobs.states import TERMINAL
from ..store.base import Record, Store
from . import mail, webhook
from .settings import NotifySettings
from .targets import TargetRefused, check_webhook

log = logging.getLogger(__name__)

CHANNELS = ("webhook", "email")
SENDING, SENT, REFUSED, RETRY, FAILED, BUSY = "sending", "sent", "refused", "retry", "failed", "busy"
DONE = frozenset({SENT, REFUSED, FAILED})
CLAIM_TTL = 60.0
CAS_RETRIES = 3


def field(channel: str) -> str:
    return f"notified_{channel}"


def handle_event(svc: Any, event: dict[str, Any]) -> dict[str, Any]:
    """The notifier's whole answer to one `caesar.jobs.finished`: count the end for the metrics
    (once per job), then deliver; ServiceUnavailable (503: the connector retries with backoff)
    while a channel is worth trying again."""
    from ..events.subjects import JOBS_FINISHED, event_type
    from ..ops import ended
    from .settings import load_notify_settings

    if event.get("type") != event_type(JOBS_FINISHED):
        raise BadRequest(f"unexpected event type {event.get('type')!r}", code="unexpected_event")
    data = event.get("data")
    job_id = data.get("job_id") if isinstance(data, dict) else None
    if not isinstance(job_id, str):
        raise BadRequest("the event carries no job_id", code="invalid_event")
    ended.record_end(svc.store, job_id)
    result = on_finished(svc.store, svc.settings, load_notify_settings(svc.settings), job_id)
    if result["retry"]:
        raise ServiceUnavailable("a notification could not be delivered yet; it will be retried",
                                 code="notify_retry", channels=result["channels"])
    return result


def on_finished(store: Store, settings: Settings, config: NotifySettings, job_id: str) -> dict[str, Any]:
    """Deliver what is due for `job_id`; {"job_id", "action", "channels", "retry"}. `retry`
    True means some channel should be tried again later (the caller answers 503)."""
    job = store.get(COLLECTION, job_id)
    if job is None or job.get("state") not in TERMINAL or not job.get("notify"):
        return {"job_id": job_id, "action": "ignored", "channels": {}, "retry": False}
    outcomes = {channel: _channel(store, settings, config, job_id, channel)
                for channel in CHANNELS if channel in job["notify"]}
    retry = any(status in (RETRY, BUSY) for status in outcomes.values())
    if not retry:
        store.update(COLLECTION, job_id, {"notify_pending": False}, expect={"notify_pending": True})
    return {"job_id": job_id, "action": "notified", "channels": outcomes, "retry": retry}


def _channel(store: Store, settings: Settings, config: NotifySettings, job_id: str, channel: str) -> str:
    key = field(channel)
    for _ in range(CAS_RETRIES):
        job = store.get(COLLECTION, job_id)
        if job is None:
            return REFUSED
        now = epoch()
        current = job.get(key) or {}
        status, attempts = current.get("status"), int(current.get("attempts") or 0)
        if status in DONE:
            return str(status)
        if status == SENDING and float(current.get("at") or 0) > now - CLAIM_TTL:
            return BUSY
        expect: dict[str, Any] = {key: None} if not current else {f"{key}.status": status,
                                                                  f"{key}.attempts": attempts}
        if attempts >= config.max_attempts:
            store.update(COLLECTION, job_id, {key: {**current, "status": FAILED, "at": now}}, expect=expect)
            log.warning("notification %s for job %s given up after %d attempts", channel, job_id, attempts)
            return FAILED
        claim = {"state": job["state"], "status": SENDING, "attempts": attempts + 1, "at": now,
                 "detail": current.get("detail", "")}
        if store.update(COLLECTION, job_id, {key: claim}, expect=expect) is not None:
            break
    else:
        return BUSY
    sent = _send(settings, config, job, channel)
    if sent.delivered:
        outcome = SENT
    elif not sent.retry:
        outcome = REFUSED
    else:
        outcome = RETRY if claim["attempts"] < config.max_attempts else FAILED
    store.update(COLLECTION, job_id, {key: {**claim, "status": outcome, "detail": sent.detail, "at": epoch()}},
                 expect={f"{key}.status": SENDING, f"{key}.attempts": claim["attempts"]})
    log.info("notification %s for job %s (%s): %s, %s", channel, job_id, job["state"], outcome, sent.detail)
    return outcome


def links(settings: Settings, job_id: str) -> dict[str, str]:
    base = settings.public_url.rstrip("/")
    return {"status": f"{base}/function/status/{job_id}", "output": f"{base}/function/output/{job_id}"}


def _send(settings: Settings, config: NotifySettings, job: Record, channel: str) -> webhook.Sent:
    view = public_view(job)
    if channel == "webhook":
        url = str(job["notify"]["webhook"])
        try:
            check_webhook(url, config.webhook_allow)  # again: DNS may answer differently now
        except TargetRefused as exc:
            return webhook.Sent(False, False, f"target refused: {exc}")
        if config.webhook_secret is None:
            return webhook.Sent(False, False, "no webhook secret configured")
        event = webhook.finished_event(view, links(settings, job["id"]))
        return webhook.post(url, event, config.webhook_secret, config.webhook_timeout)
    if config.smtp_url is None:
        return webhook.Sent(False, False, "no CAESAR_SMTP_URL configured")
    subject, text = mail_text(view, links(settings, job["id"]))
    return mail.send(config.smtp_url, config.mail_from, str(job["notify"]["email"]), subject, text)


def mail_text(view: dict[str, Any], urls: dict[str, str]) -> tuple[str, str]:
    tag = f" [{view['tag']}]" if view.get("tag") else ""
    subject = f"caesar-faas: job {view['job_id']} ({view['app']}){tag} ended {view['state']}"
    lines = [
        f"Your {view['app']} job {view['job_id']}{tag} ended with state {view['state']}.",
        "",
        f"Status:  {view.get('status') or ''}",
        f"Elapsed: {view.get('elapsed_time')} s",
    ]
    if view.get("error_class"):
        lines.append(f"Error class: {view['error_class']}")
    if view.get("products"):
        lines.append(f"Products: {', '.join(view['products'])}")
    lines += ["", f"Details: {urls['status']}", f"Results: {urls['output']}", "",
              "(Sent because the submission asked for it; this mail is not monitored.)"]
    return subject, "\n".join(lines) + "\n"
