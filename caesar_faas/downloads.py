"""Serving stored bytes: streamed through the function, or a redirect to a signed URL
(S3 presigned GET, or the local gateway's signed endpoint) so large results skip the API."""

from __future__ import annotations

import os
from typing import Any

from .http import redirect as _redirect_response
from .http import respond, stream_response
from .storage.base import ObjectNotFound

SIGNED_URL_TTL = 900


def wants_redirect(asked: bool) -> bool:
    return asked or os.environ.get("CAESAR_DOWNLOAD_REDIRECT", "").lower() in ("1", "true", "yes")


def serve(svc: Any, key: str, filename: str, media_type: str, *, redirect: bool = False,
          link: bool = False) -> Any:
    """The bytes, a redirect to a signed URL, or (`link`) that URL as JSON: a browser page
    cannot send its bearer token with a plain navigation, so it asks for the link with the
    token and then lets the browser download from storage itself (no copy in the page's memory)."""
    if link:
        info = _stat(svc, key, filename)
        url = svc.storage.presign_get(key, expires=SIGNED_URL_TTL, filename=filename)
        return respond(200, {"url": url, "filename": filename, "size": info.size, "expires_in": SIGNED_URL_TTL})
    if wants_redirect(redirect):
        _stat(svc, key, filename)
        return _redirect_response(svc.storage.presign_get(key, expires=SIGNED_URL_TTL, filename=filename))
    return stream(svc, key, filename, media_type)


def stream(svc: Any, key: str, filename: str | None, media_type: str) -> Any:
    """The bytes through the function, never a redirect (for clients that do not follow one);
    an attachment named `filename`, or inline when it is None."""
    info = _stat(svc, key, filename or key.rsplit("/", 1)[-1])
    return stream_response(svc.storage.open(key), media_type=media_type, filename=filename, size=info.size)


def _stat(svc: Any, key: str, filename: str) -> Any:
    from .errors import NotFound

    try:
        return svc.storage.stat(key)
    except ObjectNotFound as exc:
        raise NotFound(f"{filename} is not available", code="content_missing") from exc
