"""HTTP transfers through presigned URLs (CAESAR_JOB "transfer", see contract.py): how the runner
reaches storage in a Kubernetes Job, where it holds no storage credentials.

The same requests work against S3/MinIO presigned URLs and the file:// signed endpoint. The URLs
are bearer credentials, so nothing raised or logged here contains one: requests' own exception
texts name the URL, so they are redacted and never chained into a traceback. Transient failures
(connection errors, timeouts, 408/429/5xx answers) are retried with a growing pause.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import requests
import urllib3

from ..storage.base import CHUNK, ObjectNotFound

log = logging.getLogger("caesar_faas.runner.presigned")

CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 300.0  # seconds without a byte before one attempt counts as failed
ATTEMPTS = 4
BACKOFF = 2.0  # seconds before the second attempt, doubled for each next one
RETRY_STATUS = {408, 429, 500, 502, 503, 504}

T = TypeVar("T")

_QUERY = re.compile(r"\S*\?\S*")  # anything carrying a query string: a URL or a request path
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


class TransferError(Exception):
    """A transfer through a presigned URL failed (a system error: the job's own data is fine)."""


class TransientTransferError(TransferError):
    """A failure another attempt may not meet (network, timeout, overloaded store)."""


def redact(text: str) -> str:
    """text without any URL or query string in it."""
    return _QUERY.sub("<url>", _URL.sub("<url>", text))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {redact(str(exc))}"[:300]


def _reason(response: requests.Response) -> str:
    """The store's short error code and message: S3's <Code>/<Message>, or our JSON error. Never
    the whole body: S3 echoes the signature it was given in some errors."""
    try:
        head = response.raw.read(4096, decode_content=True) or b""
    except Exception:  # noqa: BLE001 - the status code alone still says enough
        head = b""
    text = head.decode("utf-8", "replace")
    found = [m.group(1) for tag in ("Code", "Message") if (m := re.search(f"<{tag}>(.*?)</{tag}>", text, re.S))]
    if not found:
        try:
            doc = json.loads(text)
            found = [str(doc.get("error", "")), str(doc.get("status", ""))]
        except (ValueError, AttributeError):
            found = []
    return redact(" ".join(part for part in found if part))[:200]


def _raise_for_status(response: requests.Response, what: str) -> None:
    if response.status_code < 300:
        return
    message = f"{what}: HTTP {response.status_code} {_reason(response)}".rstrip()
    if response.status_code in RETRY_STATUS:
        raise TransientTransferError(message)
    raise TransferError(message)


def with_retries(action: Callable[[], T], what: str, *, attempts: int = ATTEMPTS, backoff: float = BACKOFF) -> T:
    """action(), tried again after a TransientTransferError up to `attempts` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except TransientTransferError as exc:
            if attempt == attempts:
                raise
            pause = backoff * 2 ** (attempt - 1)
            log.warning("%s failed (%s); attempt %d of %d, next in %.0fs", what, exc, attempt, attempts, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def get_chunks(url: str, what: str) -> Iterator[bytes]:
    """The object behind a presigned GET URL, in chunks, exactly as stored (no transparent
    decompression: the caller hashes the stored bytes). Raises ObjectNotFound on 404."""
    try:
        # identity: a proxy must not compress on the fly, nor requests decompress on the fly.
        response = requests.get(url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                                headers={"Accept-Encoding": "identity"})
    except requests.RequestException as exc:
        raise TransientTransferError(f"GET {what}: {_describe(exc)}") from None
    with response:
        if response.status_code == 404:
            raise ObjectNotFound(what)
        _raise_for_status(response, f"GET {what}")
        try:
            # urllib3 checks the received length against Content-Length: a cut body raises.
            yield from response.raw.stream(CHUNK, decode_content=False)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise TransientTransferError(f"GET {what}: {_describe(exc)}") from None


def put_file(url: str, path: Path, *, content_type: str, what: str) -> None:
    """PUT the file at path to a presigned URL, streamed from disk with its Content-Length (S3
    refuses chunked bodies on presigned PUTs); retried on transient failures."""

    def attempt() -> None:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            # requests sends a file object with Content-Length from its size, except an empty
            # one, which it would send chunked: an empty body goes as bytes instead.
            body = fh if size else b""
            try:
                response = requests.put(url, data=body, headers={"Content-Type": content_type}, stream=True,
                                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            except requests.RequestException as exc:
                raise TransientTransferError(f"PUT {what}: {_describe(exc)}") from None
        with response:
            _raise_for_status(response, f"PUT {what}")

    with_retries(attempt, f"uploading {what}")
