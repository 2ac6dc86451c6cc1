"""The HTTP side of file:// signed URLs: a Flask blueprint mounted by the local gateway at /storage.

  GET  /storage/o/<key>?expires&[filename]&sig            stream the object (Range supported)
  PUT  /storage/o/<key>?expires&size&sig                  store exactly `size` bytes, then notify
  PUT  /storage/o/<key>?expires&max_size&sig              store at most `max_size` bytes, then notify
  PUT  /storage/o/<key>?expires&size&upload_id&part&sig   one part of a multipart upload
  OPTIONS /storage/o/<key>                                CORS preflight (every answer allows any origin)
  (a PUT URL may also carry crc32: the body must have that CRC32 and the request must send it
  in the x-amz-checksum-crc32 header, as S3 presigned URLs with a signed checksum require)

It behaves like S3 presigned URLs for the client: the same request works against both, a PUT
answers 200 with a quoted ETag header. Bodies are streamed in chunks from request.stream (never
request.data), so a multi-GB upload costs the gateway about one chunk of memory.
A URL that is expired, altered or replayed for another key, method or size gets 403, and so does a
body whose declared length the URL does not allow. A body whose CRC32 is not the signed one gets
400 bad_digest and is not stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ..bodyfile import body_file
from ..serving_stream import StreamedBody
from .base import CRC32_HEADER, BadDigest, ObjectNotFound, content_disposition, validate_key
from .local import FileChunks, LocalStorage
from .signing import Grant, SignatureError

URL_PREFIX = "/storage"

# The web page PUTs parts and reads their ETag from JavaScript, possibly from another origin than
# the one these URLs are signed for (CAESAR_PUBLIC_URL), as it does against S3/MinIO with the
# rules in infra/s3/cors.json. Any origin may use them: a signed URL is a capability carried in
# the query string (no cookie, no Authorization), usable exactly as well with curl.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Content-Length, Content-Range, Content-Disposition, Accept-Ranges",
}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, PUT, HEAD",
    "Access-Control-Allow-Headers": f"Content-Type, Range, {CRC32_HEADER}",
    "Access-Control-Max-Age": "600",
}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": code, "status": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


PutGuard = Callable[[str], "str | None"]


def storage_blueprint(storage: LocalStorage | Callable[[], LocalStorage | None],
                      name: str = "caesar_storage", put_guard: PutGuard | None = None) -> Blueprint:
    """The blueprint serving signed URLs of `storage`, or of the storage a callable returns per
    request (None: the service is not in file:// mode, the routes answer 404). put_guard(key)
    may refuse a validly signed PUT (a reason: 403): what makes upload URLs single-use."""
    bp = Blueprint(name, __name__, url_prefix=URL_PREFIX)

    def current() -> LocalStorage | None:
        return storage if isinstance(storage, LocalStorage) else storage()

    @bp.after_request
    def allow_cross_origin(response: Response) -> Response:
        response.headers.update(CORS_HEADERS)
        return response

    @bp.route("/o/<path:key>", methods=["GET", "PUT", "OPTIONS"])
    def signed_object(key: str) -> Response:
        if request.method == "OPTIONS":  # a CORS preflight: carries no signature, grants nothing
            return Response(status=204, headers=PREFLIGHT_HEADERS)
        store = current()
        if store is None:
            return _error(404, "not_found", "signed storage URLs are served only in file:// storage mode")
        # HEAD runs this view too (Flask); it reveals only headers, so a GET grant covers it.
        method = "GET" if request.method == "HEAD" else request.method
        try:
            validate_key(key)
            grant = store.signer.verify(method, key, request.args.to_dict())
        except (ValueError, SignatureError) as exc:
            return _error(403, "forbidden", str(exc))
        if method == "GET":
            return _download(store, grant)
        refusal = put_guard(key) if put_guard is not None else None
        if refusal:
            return _error(403, "forbidden", refusal)
        return _upload(store, grant)

    return bp


def _service_storage() -> LocalStorage | None:
    """The storage of the running service (runtime.services(): current settings, notifications
    published on NATS), when it is a file:// one."""
    from ..runtime import services

    found = services().storage
    return found if isinstance(found, LocalStorage) else None


def _service_put_guard(key: str) -> str | None:
    from ..runtime import services
    from ..uploads import put_refusal

    return put_refusal(services(), key)


# What the local gateway mounts: signed URLs of the service's own storage, upload URLs single-use.
blueprint = storage_blueprint(_service_storage, put_guard=_service_put_guard)


def _download(store: LocalStorage, grant: Grant) -> Response:
    try:
        fh, info, content_type = store.open_object(grant.key)
    except ObjectNotFound:
        return _error(404, "not_found", "no such object")
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{info.etag}"'}
    if grant.filename:
        headers["Content-Disposition"] = content_disposition(grant.filename)
    start, stop, status = 0, info.size, 200
    wanted = request.range
    if wanted is not None and wanted.units == "bytes" and len(wanted.ranges) == 1:
        span = wanted.range_for_length(info.size)
        if span is None:
            fh.close()
            return _error(416, "range_not_satisfiable", "requested range is outside the object",
                          {"Content-Range": f"bytes */{info.size}"})
        start, stop = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{info.size}"
    headers["Content-Length"] = str(stop - start)
    return Response(FileChunks(fh, start, stop), status=status, headers=headers, content_type=content_type,
                    direct_passthrough=True)


def _body(req: Any) -> Any:
    """The body as the storage should read it: the connection itself when the server streams it
    (serving_stream.py: it ends at the Content-Length checked above), the server's own file when
    it holds the whole body in one (waitress, for a body over its in-memory buffer: copied
    kernel-side, see bodyfile.py), else the request's stream, which stops at the cap set above."""
    raw = req.environ.get("wsgi.input")
    if isinstance(raw, StreamedBody):
        return raw
    if req.environ.get("wsgi.input_terminated") and body_file(raw, req.headers.get("Content-Length")) is not None:
        return raw
    return req.stream


def _upload(store: LocalStorage, grant: Grant) -> Response:
    declared = request.content_length
    if grant.size is not None:
        if declared is not None and declared != grant.size:
            return _error(403, "forbidden", f"body of {declared} bytes, URL signed for {grant.size}")
        limit = grant.size
    elif grant.max_size is not None and grant.upload_id is None:
        if declared is not None and declared > grant.max_size:
            return _error(403, "forbidden", f"body of {declared} bytes, URL allows at most {grant.max_size}")
        limit = grant.max_size
    else:
        return _error(403, "forbidden", "this URL does not allow PUT")
    if request.headers.get(CRC32_HEADER) != grant.crc32:
        # S3 signs the checksum header: a missing or different one is a signature mismatch.
        return _error(403, "forbidden", f"the {CRC32_HEADER} header must be the one the URL was signed for")
    # The app may cap request bodies for inline uploads; a signed URL carries its own limit. One
    # byte more than signed, so that a chunked body of exactly the right size can still be read to
    # its end (werkzeug raises when a read reaches the cap) and a longer one is seen as such.
    request.max_content_length = limit + 1
    content_type = request.mimetype or "application/octet-stream"
    stream = _body(request)
    try:
        if grant.upload_id is not None:
            if grant.part is None:
                return _error(403, "forbidden", "multipart URL without part number")
            etag = store.put_part(grant.key, grant.upload_id, grant.part, stream, size=limit,
                                  crc32=grant.crc32)
        else:
            etag = store.signed_put(grant.key, stream, size=grant.size, max_size=grant.max_size,
                                    content_type=content_type, crc32=grant.crc32).etag
    except ObjectNotFound:
        return _error(404, "not_found", "no such upload (completed, aborted or expired)")
    except BadDigest as exc:
        return _error(400, "bad_digest", str(exc))
    except ValueError as exc:
        return _error(400, "bad_request", str(exc))
    except HTTPException as exc:  # e.g. the client went away mid-body (ClientDisconnected)
        return _error(exc.code or 400, "bad_request", exc.description or "bad request body")
    response = Response(status=200)
    response.headers["ETag"] = f'"{etag}"'
    return response
