"""Large uploads that bypass the functions (issue 7, FirecREST v2 lesson): the client gets
presigned URLs (one PUT, or one per multipart part), sends the bytes straight to storage, and the
storage's object-created notification registers the file (`register_from_notification`).

file:// mode: the URLs point at the local gateway's signed endpoint, which publishes the same
MinIO-format notification, so one code path registers files in both modes.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from .access import fetch_owned
from .checksums import CRC32_B64
from .config import Settings
from .errors import ApiError, BadRequest, Conflict
from .events.subjects import STORAGE_EVENTS
from .files import announce, clean_tag, file_key, public_view
from .fits_check import GZIP_MAGIC, HEADER_PROBE, check_name, clean_filename, inspect_chunks
from .ids import epoch, is_id, iso_epoch, new_id
from .jobs.states import TERMINAL
from .runtime import storage_event_id
from .storage.base import CRC32_HEADER, MAX_PARTS, MIN_PART_SIZE, ObjectNotFound, checksum_headers, plan_parts

log = logging.getLogger("caesar.uploads")

MAX_UPLOAD = 5 * 1024**4  # S3's object size limit
MAX_PART_SIZE = 5 * 1024**3  # S3's part size limit
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^files/([A-Za-z0-9._@-]{1,128})/([0-9a-f-]{36})$")


def limits(settings: Settings) -> dict[str, Any]:
    """What a client needs to plan an upload before creating it (part CRCs depend on the part size)."""
    return {"part_size": settings.part_size, "min_part_size": MIN_PART_SIZE, "max_part_size": MAX_PART_SIZE,
            "max_parts": MAX_PARTS, "max_size": MAX_UPLOAD, "max_inline_upload": settings.max_inline_upload,
            "upload_ttl": settings.upload_ttl, "checksum_header": CRC32_HEADER}


def _int_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer", code="invalid_field", field=name)
    return value


def _sha256_field(body: dict[str, Any]) -> str | None:
    sha256 = body.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.match(sha256)):
        raise BadRequest("sha256 must be 64 lower-case hex digits", code="invalid_field", field="sha256")
    return sha256


def _crc32_field(body: dict[str, Any], size: int, part_size: int) -> list[str] | None:
    """part_crc32: one CRC32 per part of the plan (S3 encoding), or None."""
    values = body.get("part_crc32")
    if values is None:
        return None
    count = 1 if size <= part_size else len(plan_parts(size, part_size))
    if (not isinstance(values, list) or not all(isinstance(v, str) and CRC32_B64.match(v) for v in values)):
        raise BadRequest("part_crc32 must be a list of CRC32 values, base64 of 4 bytes each (as S3's "
                         "x-amz-checksum-crc32)", code="invalid_field", field="part_crc32")
    if len(values) != count:
        raise BadRequest(f"part_crc32 has {len(values)} values; {size} bytes in parts of {part_size} make "
                         f"{count} part(s)", code="invalid_field", field="part_crc32")
    return values


def create(svc: Any, who: Any, body: dict[str, Any]) -> dict[str, Any]:
    """A pending file record and where to send its bytes."""
    from .quotas import check_upload

    unknown = set(body) - {"filename", "size", "sha256", "tag", "part_size", "part_crc32"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field")
    filename = body.get("filename")
    if not isinstance(filename, str) or not filename:
        raise BadRequest("filename must be a non-empty string", code="invalid_field", field="filename")
    filename = clean_filename(filename)
    fmt = check_name(filename)
    size = _int_field(body, "size")
    if not 0 < size <= MAX_UPLOAD:
        raise BadRequest(f"size must be between 1 and {MAX_UPLOAD}", code="invalid_field", field="size")
    sha256 = _sha256_field(body)
    tag = clean_tag(body.get("tag"))
    part_size = svc.settings.part_size
    if "part_size" in body:
        part_size = _int_field(body, "part_size")
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise BadRequest(f"part_size must be between {MIN_PART_SIZE} and 5 GiB", code="invalid_field",
                             field="part_size")
    crc32s = _crc32_field(body, size, part_size)
    check_upload(svc.store, who.owner, size, svc.settings)

    settings = svc.settings
    file_id = new_id()
    key = file_key(who.owner, file_id)
    now = epoch()
    expires = now + settings.upload_ttl
    single = multipart = None
    upload_id = None
    if size <= part_size:
        crc32 = crc32s[0] if crc32s else None
        single = {"url": svc.storage.presign_put(key, size=size, expires=settings.upload_ttl, crc32=crc32),
                  "method": "PUT", "headers": checksum_headers(crc32)}
    else:
        mp = svc.storage.create_multipart(key, size=size, part_size=part_size, expires=settings.upload_ttl,
                                          crc32s=crc32s)
        upload_id = mp.upload_id
        multipart = {"upload_id": mp.upload_id, "part_size": mp.part_size,
                     "parts": [{"number": p.number, "url": p.url, "offset": p.offset, "size": p.size,
                                "headers": p.headers} for p in mp.parts]}
    # part_crc32 stays on the record until completion: S3 wants the part CRCs again then, and a
    # resumed upload's fresh URLs are bound to them again.
    record = {"id": file_id, "owner": who.owner, "created": now, "status": "pending", "filename_orig": filename,
              "format": fmt, "size": size, "sha256": sha256, "shape": None, "tag": tag, "key": key,
              "upload_id": upload_id, "part_crc32": crc32s, "expires": expires,
              "part_size": part_size if upload_id else None,
              "announced": False}
    try:
        svc.store.insert("files", record)
    except Exception:
        if upload_id:
            svc.storage.abort_multipart(key, upload_id)
        raise
    return {**public_view(record), "expires": iso_epoch(expires), "single": single, "multipart": multipart,
            "complete_url": f"/function/upload/{file_id}/complete"}


def resume(svc: Any, who: Any, file_id: str) -> dict[str, Any]:
    """Where an unfinished upload stands, for a client resuming it: the parts the storage holds
    (`received`: number, etag, size) and fresh URLs for the others (or for the single PUT). A
    finished upload answers its file record."""
    record = fetch_owned(svc.store, "files", file_id, who.owner, who.is_admin, "file")
    if record.get("status") != "pending":
        return public_view(record)
    left = int(record["expires"] - epoch())
    if left <= 0:
        raise Conflict("the upload expired; start a new one", code="upload_expired")
    base = {**public_view(record), "expires": iso_epoch(record["expires"]), "single": None, "multipart": None,
            "received": [], "complete_url": f"/function/upload/{file_id}/complete"}
    crc32s = record.get("part_crc32")
    if not record.get("upload_id"):  # a single PUT: it is sent again whole
        crc32 = crc32s[0] if crc32s else None
        base["single"] = {"url": svc.storage.presign_put(record["key"], size=record["size"], expires=left,
                                                         crc32=crc32),
                          "method": "PUT", "headers": checksum_headers(crc32)}
        return base
    part_size = record.get("part_size") or svc.settings.part_size
    try:
        received = svc.storage.list_parts(record["key"], record["upload_id"])
    except ObjectNotFound as exc:
        raise Conflict("the multipart upload is being completed or is gone", code="upload_gone") from exc
    have = {number for number, _, _ in received}
    missing = [n for n, _, _ in plan_parts(record["size"], part_size) if n not in have]
    urls = svc.storage.part_urls(record["key"], record["upload_id"], size=record["size"], part_size=part_size,
                                 numbers=missing, expires=left, crc32s=crc32s)
    base["received"] = [{"number": n, "etag": etag, "size": size} for n, etag, size in received]
    base["multipart"] = {"upload_id": record["upload_id"], "part_size": part_size,
                         "parts": [{"number": p.number, "url": p.url, "offset": p.offset, "size": p.size,
                                    "headers": p.headers} for p in urls]}
    return base


def _parts(body: dict[str, Any]) -> list[tuple[int, str]]:
    parts = body.get("parts")
    if not isinstance(parts, list) or not parts:
        raise BadRequest("parts must be a non-empty list of {number, etag}", code="invalid_field", field="parts")
    out = []
    for part in parts:
        if (not isinstance(part, dict) or not isinstance(part.get("number"), int)
                or not isinstance(part.get("etag"), str)):
            raise BadRequest("each part needs an integer number and a string etag", code="invalid_field",
                             field="parts")
        out.append((part["number"], part["etag"].strip('"')))
    return sorted(out)


def complete(svc: Any, who: Any, file_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Finish a multipart upload (or confirm a single PUT) and announce the object, as MinIO would;
    registration itself happens on the event (the notification id dedupes MinIO's own)."""
    record = fetch_owned(svc.store, "files", file_id, who.owner, who.is_admin, "file")
    if record.get("status") != "pending":
        return public_view(record)  # completing twice is harmless
    # The client may hash the file while its parts travel and send the sha256 only now.
    sha256 = _sha256_field(body)
    if sha256 and record.get("sha256") not in (None, sha256):
        raise BadRequest("sha256 differs from the one given when the upload was created",
                         code="sha256_mismatch", field="sha256")
    changes: dict[str, Any] = {"sha256": sha256} if sha256 and not record.get("sha256") else {}
    if record.get("upload_id"):
        try:
            info = svc.storage.complete_multipart(record["key"], record["upload_id"], _parts(body),
                                                  crc32s=record.get("part_crc32"))
        except ValueError as exc:  # numbers or ETags that are not this upload's parts
            raise BadRequest(f"the parts list does not match the uploaded parts: {exc}", code="invalid_parts",
                             field="parts") from None
        except ObjectNotFound as exc:
            raise Conflict("the multipart upload no longer exists (completed, aborted or expired)",
                           code="upload_gone") from exc
        changes.update(upload_id=None, part_crc32=None)
    else:
        try:
            info = svc.storage.stat(record["key"])
        except ObjectNotFound as exc:
            raise Conflict("nothing was uploaded to the URL yet", code="upload_incomplete") from exc
    if changes:  # one write, before the announcement below registers the file
        svc.store.update("files", file_id, changes, expect={"status": "pending"})
    from .storage.notifications import minio_record

    event_name = "s3:ObjectCreated:CompleteMultipartUpload" if record.get("upload_id") else "s3:ObjectCreated:Put"
    notification = minio_record(_bucket(svc), info, event_name)
    # A multipart object was already announced by the storage itself during complete_multipart,
    # possibly registered as "not completed through the service yet" (the record still had its
    # upload id then). This announcement, made after the store update, must not be dropped as a
    # duplicate of that one: it carries its own id (registering twice changes nothing).
    msg_id = storage_event_id(info.key, info.etag) + ("-completed" if record.get("upload_id") else "")
    svc.bus.publish_raw(STORAGE_EVENTS, json.dumps(notification).encode(), msg_id=msg_id)
    return {**public_view(record), "status": "Upload complete; registering"}


def _bucket(svc: Any) -> str:
    return getattr(svc.storage, "bucket", "local")


def register_from_notification(svc: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """Apply a MinIO-format notification: pending -> ready (or invalid). Idempotent; events for
    other prefixes, unknown records or other event types are ignored."""
    from .storage.notifications import parse_minio_record

    results = []
    for event_name, _bucket_name, key, size, etag in parse_minio_record(doc):
        results.append(_register_one(svc, event_name, key, size, etag))
    return {"results": results}


def _register_one(svc: Any, event_name: str, key: str, size: int | None, etag: str | None) -> str:
    if not event_name.startswith("s3:ObjectCreated"):
        return "ignored: not an object-created event"
    match = _KEY.match(key)
    if not match or not is_id(match.group(2)):
        return "ignored: key outside the service's prefixes"
    owner, file_id = match.groups()
    record = svc.store.get("files", file_id)
    if record is None or record.get("owner") != owner or record.get("key") != key:
        return "ignored: no such upload"
    if record.get("status") == "ready" and etag and etag != record.get("etag"):
        return _check_replaced(svc, record)
    if record.get("status") != "pending":
        return f"unchanged: already {record.get('status')}"
    if record.get("upload_id"):
        return "ignored: multipart upload not completed through the service yet"
    try:
        info = svc.storage.stat(key)
    except ObjectNotFound:
        return "ignored: object gone"
    changes: dict[str, Any] = {"size": info.size, "etag": info.etag, "expires": None, "part_crc32": None}
    try:
        fits = _inspect_object(svc, record["filename_orig"], key, info.size)
        if info.size != record["size"]:
            raise BadRequest(f"{info.size} bytes arrived, {record['size']} were announced", code="size_mismatch")
        changes.update({"status": "ready", "format": fits.format, "shape": fits.shape, "bitpix": fits.bitpix})
    except ApiError as exc:  # 413 / 415 / 422 from the FITS check, 400 for a size mismatch
        changes.update(_invalid(svc, exc.message))
    except ObjectNotFound:
        return "ignored: object gone"
    # What was validated must be the version recorded: an object replaced meanwhile (a second PUT
    # while pending) is registered from its own event.
    if _current_etag(svc, key) != info.etag:
        return "ignored: the object changed while it was validated"
    updated = svc.store.update("files", file_id, changes, expect={"status": "pending"})
    if updated is None:
        return "unchanged: raced"
    if updated["status"] == "ready":
        announce(svc, updated)
    else:
        svc.storage.delete(key)  # nothing may use refused bytes; the record says why, then expires
    return updated["status"]


def _inspect_object(svc: Any, filename: str, key: str, size: int) -> Any:
    """Plain FITS: the header blocks (a ranged GET) and the size. gzip: the whole stream, every
    member, decompressed under the cap its header sets (fits_check) and never kept."""
    if svc.storage.read_bytes(key, start=0, end=2) == GZIP_MAGIC:
        return inspect_chunks(filename, svc.storage.open(key), size, whole=True)
    return inspect_chunks(filename, svc.storage.open(key, start=0, end=min(size, HEADER_PROBE)), size, whole=False)


def _current_etag(svc: Any, key: str) -> str | None:
    try:
        return str(svc.storage.stat(key).etag)
    except ObjectNotFound:
        return None


def _invalid(svc: Any, reason: str) -> dict[str, Any]:
    """Changes that make a record invalid: it counts in the quota until it expires (monitor)."""
    return {"status": "invalid", "reason": reason, "expires": epoch() + svc.settings.upload_ttl}


def _check_replaced(svc: Any, record: dict[str, Any]) -> str:
    """An object-created event for another version of a file already validated: its presigned PUT
    was replayed (S3 URLs cannot be revoked before they expire). Unless the event is merely late
    (the object still is the validated version), the file is no longer what was checked."""
    current = _current_etag(svc, record["key"])
    if current == record.get("etag"):
        return "unchanged: already ready"  # a late event for an earlier version
    reason = "the object was replaced after it was validated (its upload URL was used again)"
    updated = svc.store.update("files", record["id"], _invalid(svc, reason),
                               expect={"status": "ready", "etag": record.get("etag")})
    if updated is None:
        return "unchanged: raced"
    log.warning("file %s was overwritten after validation; marked invalid", record["id"])
    svc.storage.delete(record["key"])
    return "invalid"


def put_refusal(svc: Any, key: str) -> str | None:
    """Why a presigned PUT to `key` must be refused now, or None: an upload URL is single-use
    (only while its file is pending), a product URL only while its job runs. The file:// signed
    endpoint asks this before storing anything; S3 cannot, so registration checks ETags."""
    match = _KEY.match(key)
    if match:
        record = svc.store.get("files", match.group(2))
        if record is None or record.get("key") != key or record.get("status") != "pending":
            return "this upload URL was already used (or its upload ended): it is single-use"
        return None
    parts = key.split("/")
    if len(parts) == 4 and parts[0] == "jobs" and is_id(parts[2]):
        job = svc.store.get("jobs", parts[2])
        if job is None or job.get("owner") != parts[1] or job.get("state") in TERMINAL:
            return "this product URL belongs to a job that has ended"
    return None


def expire(svc: Any, now: float, batch: int = 100) -> int:
    """Drop pending uploads past their deadline (abort their multipart upload, delete any bytes),
    and refused (invalid) files once their reason has been shown for upload_ttl seconds."""
    from .files import finish_delete

    count = 0
    for status in ("pending", "invalid"):
        for record in svc.store.find("files", {"status": status, "expires": {"lt": now}}, limit=batch, order="expires"):
            if svc.store.update("files", record["id"], {"status": "deleting"}, expect={"status": status}):
                finish_delete(svc, {**record, "status": "deleting"})
                count += 1
    return count
