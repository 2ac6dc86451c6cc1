"""`inputfile` given as a URL: the service fetches the image into the caller's storage first,
as an ordinary upload (same FITS checks, same quotas, listed by /function/files), and the job
runs on that file.

A service that fetches URLs for its users must not become their way into the network behind it
(server-side request forgery): only http(s), and every address the host name resolves to must
be public, unless CAESAR_FETCH_PRIVATE_URLS=1 (a local stack on a laptop, or tests). Redirects
are followed by hand, a few at most, each target checked the same way. The body is streamed to a
spool file, never held in memory, and refused beyond the inline upload limit.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import posixpath
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from ..errors import ApiError, BadRequest, PayloadTooLarge
from ..fits_check import check_name
from ..multipart import HashingSpool, UploadedFile

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
TIMEOUT = (10, 60)  # connect, read (seconds)
CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


def is_url(value: str) -> bool:
    return urlsplit(value).scheme.lower() in ("http", "https")


def private_allowed() -> bool:
    return os.environ.get("CAESAR_FETCH_PRIVATE_URLS", "").lower() in ("1", "true", "yes")


def check_target(url: str, *, allow_private: bool) -> None:
    """BadRequest unless url is http(s) to a host whose every address may be reached."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadRequest("inputfile: only http and https URLs can be fetched", option="inputfile")
    if parts.username or parts.password:
        raise BadRequest("inputfile: URLs with credentials are not accepted", option="inputfile")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadRequest(f"inputfile: the host {parts.hostname!r} cannot be resolved", option="inputfile") from exc
    if allow_private:
        return
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise BadRequest(f"inputfile: the host {parts.hostname!r} is not a public address; this service "
                             "fetches only from the public internet", option="inputfile")


def fetch_to_spool(url: str, *, max_bytes: int, spool_dir: str,
                   allow_private: bool | None = None) -> UploadedFile:
    """The body of url in a hashing spool file, named after the URL's path (a FITS name)."""
    allow = private_allowed() if allow_private is None else allow_private
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        check_target(current, allow_private=allow)
        try:
            resp = requests.get(current, stream=True, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise BadRequest(f"inputfile: fetching the URL failed ({type(exc).__name__})",
                             option="inputfile") from exc
        if resp.is_redirect and resp.headers.get("Location"):
            current = urljoin(current, resp.headers["Location"])
            resp.close()
            continue
        with resp:
            return _spool(resp, current, max_bytes, spool_dir)
    raise BadRequest(f"inputfile: more than {MAX_REDIRECTS} redirects", option="inputfile")


def _spool(resp: Any, url: str, max_bytes: int, spool_dir: str) -> UploadedFile:
    if resp.status_code != 200:
        raise BadRequest(f"inputfile: the URL answered HTTP {resp.status_code}", option="inputfile")
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    spool = HashingSpool(spool_dir)
    try:
        first = b""
        for chunk in resp.iter_content(CHUNK):
            if not first:
                first = chunk[:2]
            spool.write(chunk)
            if spool.size > max_bytes:
                raise _too_large(max_bytes)
        spool.flush()
        return UploadedFile(filename=_fits_name(url, first), spool=spool)
    except (ApiError, requests.RequestException, OSError) as exc:
        spool.close()
        if isinstance(exc, ApiError):
            raise
        raise BadRequest(f"inputfile: reading the URL failed ({type(exc).__name__})", option="inputfile") from exc


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"inputfile: the image at the URL is larger than {max_bytes} bytes; upload it "
                           "through the presigned route and give its file id", code="payload_too_large")


def _fits_name(url: str, first_bytes: bytes) -> str:
    """The URL's last path segment when it is a FITS name; else one made from it, so that the
    content check (not the name) decides (cut-out services rarely end their URLs in .fits)."""
    base = posixpath.basename(urlsplit(url).path)[:200] or "image"
    try:
        check_name(base)
        return base
    except ApiError:
        return base + (".fits.gz" if first_bytes.startswith(GZIP_MAGIC) else ".fits")
