"""MinIO-format bucket notifications: the record MinIO publishes to NATS when an object is created.

The file:// storage builds the same record after a signed PUT or a completed multipart upload, so a
single code path (the connector binding on `caesar.storage.events`) registers uploads in both modes.
MinIO query-escapes the object key (`quote_plus`): parse_minio_record undoes it.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from .base import ObjectInfo

PUT = "s3:ObjectCreated:Put"
COMPLETE_MULTIPART = "s3:ObjectCreated:CompleteMultipartUpload"


def minio_record(bucket: str, info: ObjectInfo, event_name: str) -> dict[str, Any]:
    """A notification document shaped like MinIO's NATS target output."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(info.modified))
    millis = int((info.modified % 1) * 1000)
    return {
        "EventName": event_name,
        "Key": f"{bucket}/{info.key}",
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": f"{when}.{millis:03d}Z",
            "eventName": event_name,
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                "object": {
                    "key": quote_plus(info.key),
                    "size": info.size,
                    "eTag": info.etag,
                },
            },
        }],
    }


def parse_minio_record(doc: dict[str, Any]) -> list[tuple[str, str, str, int, str]]:
    """(event name, bucket, key, size, etag) for each record; keys are unescaped, ETags unquoted.

    Records without an object key (e.g. bucket-level events) are skipped; a document that is not a
    notification at all gives an empty list, so callers can ignore it.
    """
    out: list[tuple[str, str, str, int, str]] = []
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        return out
    for record in records:
        try:
            s3 = record["s3"]
            name = str(record["eventName"])
            bucket = str(s3["bucket"]["name"])
            obj = s3["object"]
            key = unquote_plus(str(obj["key"]))
            size = int(obj.get("size") or 0)
            etag = str(obj.get("eTag") or "").strip('"')
        except (KeyError, TypeError, ValueError):
            continue
        out.append((name, bucket, key, size, etag))
    return out
