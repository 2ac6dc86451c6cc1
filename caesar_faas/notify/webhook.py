"""The webhook a finished job sends: a CloudEvent (structured mode) signed with HMAC-SHA256.

Receivers verify `X-Caesar-Signature: sha256=<hex>`, the HMAC-SHA256 of the exact request body
under the deployment's webhook secret (compare in constant time), and may drop repeats by the
event id, "<job id>-<state>", which is the same for every delivery of one job's end. The event's
`time` is inside the signed body, so an old event replayed later can be recognised too.
Redirects are never followed and the call gives up after the timeout (5 s by default)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import requests

from ..events.cloudevents import SOURCE
from ..ids import iso

EVENT_TYPE = "org.caesar.jobs.finished"
SIGNATURE_HEADER = "X-Caesar-Signature"
RETRY_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class Sent:
    delivered: bool
    retry: bool  # worth trying again later (5xx, 429, timeout, connection refused)
    detail: str  # for the job record and the log: never the URL


def finished_event(job_view: dict[str, Any], links: dict[str, str]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{job_view['job_id']}-{job_view['state']}",
        "source": SOURCE,
        "type": EVENT_TYPE,
        "subject": job_view["job_id"],
        "time": iso(),
        "datacontenttype": "application/json",
        "data": {**job_view, "links": links},
    }


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (also used by the tests)."""
    return hmac.compare_digest(sign(secret, body), header or "")


def post(url: str, event: dict[str, Any], secret: str, timeout: float) -> Sent:
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/cloudevents+json", SIGNATURE_HEADER: sign(secret, body),
               "User-Agent": "caesar-faas-notifier", "ce-id": event["id"]}
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        return Sent(False, True, "timed out")
    except requests.RequestException as exc:
        return Sent(False, True, f"not reachable ({type(exc).__name__})")
    resp.close()
    if 200 <= resp.status_code < 300:
        return Sent(True, False, f"HTTP {resp.status_code}")
    if 300 <= resp.status_code < 400:
        return Sent(False, False, f"HTTP {resp.status_code}: redirects are not followed")
    return Sent(False, resp.status_code in RETRY_STATUSES, f"HTTP {resp.status_code}")
