"""Files: inline upload, list, metadata, content, delete (the `upload` and `files` functions).

Order of effects keeps failures clean: the object is written first, the record second (a failed
insert removes the object), the event last. A record not yet announced keeps `announced: False`
so the monitor can publish the event later (an outbox), never twice: the event id is stable.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from .access import fetch_owned, owner_filter
from .errors import BadRequest, Conflict
from .events.subjects import FILES_CREATED, FILES_DELETED
from .fits_check import FitsInfo, check_name, clean_filename, inspect_file
from .ids import iso_epoch, new_id, now
from .multipart import UploadedFile, parse_upload

MB = 1024 * 1024
MAX_TAG = 128


def file_key(owner: str, file_id: str) -> str:
    return f"files/{owner}/{file_id}"


def clean_tag(tag: Any) -> str | None:
    if tag is None or tag == "":
        return None
    if not isinstance(tag, str) or len(tag) > MAX_TAG or any(ord(c) < 32 for c in tag):
        raise BadRequest(f"tag must be a string of at most {MAX_TAG} printable characters", code="invalid_tag")
    return tag


def public_view(rec: dict[str, Any]) -> dict[str, Any]:
    """caesar-rest's upload fields plus what we know more."""
    state = rec.get("status", "ready")
    human = {"ready": "File uploaded with success", "pending": "Waiting for the upload to complete",
             "invalid": f"File refused: {rec.get('reason', '')}"}.get(state, state)
    return {
        "uuid": rec["id"],
        "filename_orig": rec.get("filename_orig"),
        "format": rec.get("format"),
        "size": round((rec.get("size") or 0) / MB, 6),
        "bytes": rec.get("size"),
        "date": iso_epoch(rec["created"]),
        "tag": rec.get("tag"),
        "status": human,
        "state": state,
        "sha256": rec.get("sha256"),
        "shape": rec.get("shape"),
        "owner": rec.get("owner"),
    }


def store_upload(svc: Any, owner: str, upload: UploadedFile, tag: Any) -> dict[str, Any]:
    """Validate a spooled inline upload, store object and record, announce it."""
    from .quotas import check_upload

    tag = clean_tag(tag)
    filename = clean_filename(upload.filename)
    check_name(filename)
    info: FitsInfo = inspect_file(upload.filename, upload.path)
    check_upload(svc.store, owner, upload.size, svc.settings)
    file_id = new_id()
    key = file_key(owner, file_id)
    upload.spool.flush()
    # One pass: the spool already holds the bytes and their hashes; the storage takes the file
    # as it is (file://: a rename) or reads it once (s3://).
    obj = svc.storage.put_file(key, upload.path, size=upload.size, content_type="application/fits")
    record = {
        "id": file_id, "owner": owner, "created": now().timestamp(), "status": "ready",
        "filename_orig": filename, "format": info.format,
        "size": upload.size, "sha256": upload.sha256, "shape": info.shape, "bitpix": info.bitpix,
        "tag": tag, "key": key, "etag": obj.etag, "announced": False,
    }
    try:
        svc.store.insert("files", record)
    except Exception:
        svc.storage.delete(key)
        raise
    from .logs import get_logger

    get_logger("caesar.files").info("file stored", file_id=record["id"], bytes=record.get("size"))
    announce(svc, record)
    return record


def spool_dir(svc: Any) -> str:
    """The folder for an inline upload's spool file: file:// storage stages it on its own
    filesystem, so storing it is a rename."""
    staging = getattr(svc.storage, "staging_dir", None)
    return str(staging if staging is not None else svc.settings.tmp_dir)


def store_inline(svc: Any, owner: str, stream: BinaryIO, content_type: str, content_length: str | None, *,
                 limit_message: str) -> dict[str, Any]:
    """A multipart body with the image in field `file` (and `tag`): spooled, checked, stored,
    announced (the upload function, native and caesar-rest's route alike)."""
    fields, upload = parse_upload(stream, content_type, content_length, max_bytes=svc.settings.max_inline_upload,
                                  limit_message=limit_message, spool_dir=spool_dir(svc))
    try:
        return store_upload(svc, owner, upload, fields.get("tag"))
    finally:
        upload.spool.close()


def announce(svc: Any, record: dict[str, Any]) -> bool:
    """Publish caesar.files.created once; False leaves it to the monitor's retry."""
    data = {"file_id": record["id"], "owner": record["owner"], "key": record["key"], "size": record["size"],
            "sha256": record.get("sha256"), "format": record.get("format"), "shape": record.get("shape"),
            "tag": record.get("tag")}
    try:
        svc.bus.publish(FILES_CREATED, data, about=record["id"], event_id=f"{record['id']}-created")
    except Exception:  # noqa: BLE001 - the outbox retries; the upload itself succeeded
        import logging

        logging.getLogger("caesar.files").warning("files.created for %s not published yet", record["id"])
        return False
    svc.store.update("files", record["id"], {"announced": True}, expect={"announced": False})
    return True


def list_files(svc: Any, owner: str, is_admin: bool, *, limit: int, cursor: str | None,
               all_users: bool = False, tag: str | None = None) -> dict[str, Any]:
    where: dict[str, Any] = owner_filter(owner, is_admin, all_users)
    where["status"] = {"in": ["ready", "pending", "invalid"]}
    if tag:
        where["tag"] = tag
    try:
        page = svc.store.page("files", where, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise BadRequest("invalid cursor", code="invalid_cursor") from exc
    return {"files": [public_view(r) for r in page.items], "next_cursor": page.next_cursor}


def all_ids(svc: Any, owner: str) -> list[str]:
    """caesar-rest's /fileids: every ready file of the caller, newest first."""
    return [r["id"] for r in svc.store.find("files", {"owner": owner, "status": "ready"})][::-1]


def get_file(svc: Any, owner: str, is_admin: bool, file_id: str) -> dict[str, Any]:
    rec = fetch_owned(svc.store, "files", file_id, owner, is_admin, "file")
    if rec.get("status") == "deleting":
        from .errors import NotFound

        raise NotFound(f"file {file_id} not found", code="file_not_found")
    return rec


def ready_file(svc: Any, owner: str, is_admin: bool, file_id: str) -> dict[str, Any]:
    rec = get_file(svc, owner, is_admin, file_id)
    if rec.get("status") != "ready":
        raise Conflict(f"file {file_id} is {rec.get('status')}, not ready", code="file_not_ready")
    return rec


def delete_file(svc: Any, owner: str, is_admin: bool, file_id: str) -> dict[str, Any]:
    """Mark, remove the object, remove the record, announce. A crash midway leaves a
    'deleting' record that the monitor finishes."""
    rec = get_file(svc, owner, is_admin, file_id)
    marked = svc.store.update("files", file_id, {"status": "deleting"},
                              expect={"status": {"in": ["ready", "pending", "invalid"]}})
    if marked is None:
        from .errors import NotFound

        raise NotFound(f"file {file_id} not found", code="file_not_found")
    finish_delete(svc, marked)
    return rec


def finish_delete(svc: Any, rec: dict[str, Any]) -> None:
    svc.storage.delete(rec["key"])
    if rec.get("upload_id"):
        svc.storage.abort_multipart(rec["key"], rec["upload_id"])
    if svc.store.delete("files", rec["id"], expect={"status": "deleting"}):
        svc.bus.publish(FILES_DELETED, {"file_id": rec["id"], "owner": rec["owner"], "key": rec["key"]},
                        about=rec["id"], event_id=f"{rec['id']}-deleted")
