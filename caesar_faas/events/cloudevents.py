"""CloudEvents 1.0 in JSON structured mode, and the binary-mode HTTP headers the connector sends."""

from __future__ import annotations

import json
from typing import Any

from ..ids import iso, new_id
from ..logs import request_id
from .subjects import event_type

SOURCE = "/caesar-faas"


def make_event(subject: str, data: dict[str, Any], *, about: str, event_id: str | None = None,
               source: str = SOURCE) -> dict[str, Any]:
    """A CloudEvent. `about` is the CloudEvents `subject` (the file or job id).

    A caller that may publish the same fact twice (an outbox retry) passes a stable event_id so
    that JetStream's duplicate window (Nats-Msg-Id) drops the copy. The request id bound now
    (logs.request_id) travels as the extension attribute `requestid`."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or new_id(),
        "source": source,
        "type": event_type(subject),
        "subject": about,
        "time": iso(),
        "datacontenttype": "application/json",
        "data": data,
    }
    rid = request_id()
    if rid:
        event["requestid"] = rid
    return event


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def binary_headers(event: dict[str, Any]) -> dict[str, str]:
    """HTTP headers of CloudEvents binary mode (the body is then the `data` alone)."""
    headers = {
        "ce-specversion": str(event.get("specversion", "1.0")),
        "ce-id": str(event["id"]),
        "ce-source": str(event.get("source", SOURCE)),
        "ce-type": str(event["type"]),
        "Content-Type": str(event.get("datacontenttype", "application/json")),
    }
    for attr in ("subject", "time", "requestid"):
        if event.get(attr):
            headers[f"ce-{attr}"] = str(event[attr])
    return headers


def from_http(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Rebuild a CloudEvent from an HTTP request in binary or structured mode.

    Raises ValueError when the request holds no CloudEvent."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "ce-id" in lower and "ce-type" in lower:
        data = json.loads(body or b"null")
        event = {k[3:]: v for k, v in lower.items() if k.startswith("ce-")}
        event["data"] = data
        return event
    doc = json.loads(body or b"null")
    if isinstance(doc, dict) and "specversion" in doc and "id" in doc and "type" in doc:
        return doc
    if isinstance(doc, dict) and "Records" in doc:  # a MinIO / S3 notification, not a CloudEvent
        return {"specversion": "1.0", "id": lower.get("nats-msg-id", ""), "type": "minio",
                "source": "minio", "data": doc}
    raise ValueError("the request holds no CloudEvent")
