"""Client side of large uploads (docs/large-uploads.md): ask the gateway where to send the bytes,
PUT them straight to storage (one URL, or one per multipart part, each retried on its own), then
tell the gateway the upload is complete.

The file is streamed from disk part by part: memory use does not grow with the file size.
Works the same against file:// (the gateway's signed /storage URLs) and s3:// (S3/MinIO
presigned URLs), since both answer a part PUT with an ETag header.

Integrity: a first quick pass computes each part's CRC32, which the gateway signs into the part's
URL, so the store itself refuses a part that arrives damaged (S3 BadDigest) and S3 completes with
a composite CRC32, as boto3's own upload_file does. The sha256 of a multipart file is computed on
another thread while the parts travel and sent with the completion (a single PUT's goes with the
creation: its storage event may register the file before the completion call).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO
from urllib.parse import urljoin

import requests

from .checksums import file_part_crc32, file_sha256
from .storage.base import plan_parts

READ_BLOCK = 1024 * 1024
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


class UploadError(Exception):
    """The upload failed; `status` and `body` carry the last HTTP answer when there was one."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class FileSection:
    """Bytes [offset, offset + size) of a file as a read()-able body with a known length.

    requests sends it with a Content-Length and reads it block by block; it has no fileno() on
    purpose (requests would then take the whole file's size). Each read reports progress.
    """

    def __init__(self, path: str, offset: int, size: int, on_read: Callable[[int], None] | None = None) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close() / the with block
        self._fh.seek(offset)
        self._left = size
        self._size = size
        self._on_read = on_read

    def __len__(self) -> int:
        return self._left

    def read(self, n: int = -1) -> bytes:
        # http.client asks for 8 KiB at a time; answering with up to READ_BLOCK sends the part in
        # far fewer writes (several times faster against S3 servers that store streamed bodies).
        n = self._left if n is None or n < 0 else min(max(n, READ_BLOCK), self._left)
        chunk = self._fh.read(n) if n else b""
        self._left -= len(chunk)
        if chunk and self._on_read:
            self._on_read(len(chunk))
        return chunk

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> FileSection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Progress:
    """A one-line progress bar on stderr, redrawn at most 5 times a second; thread-safe."""

    def __init__(self, total: int, label: str, enabled: bool = True, out: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.enabled = enabled
        self.out = out or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.enabled and (now - self._drawn >= 0.2 or self.done >= self.total):
                self._drawn = now
                self._draw(now)

    def undo(self, n: int) -> None:
        """A failed attempt's bytes will be sent again."""
        with self._lock:
            self.done -= n

    def _draw(self, now: float) -> None:
        share = min(self.done / self.total, 1.0)
        bar = "#" * int(share * 30)
        rate = self.done / max(now - self.started, 1e-6) / 2**20
        self.out.write(f"\r{self.label} [{bar:<30}] {share * 100:5.1f}% "
                       f"{self.done / 2**20:,.1f}/{self.total / 2**20:,.1f} MiB {rate:,.1f} MiB/s")
        self.out.flush()

    def finish(self) -> None:
        if self.enabled:
            with self._lock:
                self._draw(time.monotonic())
                self.out.write("\n")
                self.out.flush()


def _answer_body(answer: requests.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text[:500]


def _put_section(http: requests.Session, url: str, path: str, offset: int, size: int, retries: int,
                 progress: Progress, what: str, timeout: float, headers: dict[str, str] | None = None) -> str:
    """PUT one section, retrying transient failures with backoff; the ETag of the stored bytes."""
    last: UploadError | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
        sent = 0

        def counted(n: int) -> None:
            nonlocal sent
            sent += n
            progress.add(n)

        try:
            with FileSection(path, offset, size, counted) as body:
                answer = http.put(url, data=body, headers=headers, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = UploadError(f"{what}: {exc.__class__.__name__}: {exc}")
        else:
            if answer.ok:
                etag = answer.headers.get("ETag", "").strip('"')
                if not etag:
                    raise UploadError(f"{what}: the storage answered without an ETag", answer.status_code)
                return etag
            last = UploadError(f"{what}: HTTP {answer.status_code}", answer.status_code, _answer_body(answer))
            if answer.status_code not in RETRY_STATUSES:
                raise last  # 400/403/404 (BadDigest: the file changed): the same bytes cannot help
        progress.undo(sent)
    assert last is not None
    raise last


class _Sha256InBackground:
    """file_sha256 on a daemon thread (hashlib releases the GIL, so it overlaps the part PUTs)."""

    def __init__(self, path: str) -> None:
        self._result: str | BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="sha256", daemon=True)
        self._thread.start()

    def _run(self, path: str) -> None:
        try:
            self._result = file_sha256(path)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of result()
            self._result = exc

    def result(self) -> str:
        self._thread.join()
        if isinstance(self._result, BaseException):
            raise self._result
        assert self._result is not None
        return self._result


def upload_large(gateway_url: str, token: str | None, path: str, tag: str | None = None,
                 part_size: int | None = None, retries: int = 3, progress: bool = True, *,
                 filename: str | None = None, workers: int = 4, timeout: float = 600.0,
                 session: requests.Session | None = None, checksums: bool = True) -> dict[str, Any]:
    """Upload the file at `path` through the presigned flow and return the completion answer
    (the file record: `uuid`, `state`...; registration then follows the storage event).

    part_size: the part size asked of the gateway (its configured one when None: the part CRCs
    depend on it, so the client asks GET /function/upload first). retries: further
    attempts per part after a transient failure (connection errors, 408, 429, 5xx). workers: parts
    sent in parallel. checksums: bind each part to its CRC32 and send the file's sha256 (False
    skips both reads of the file that are not the upload itself).
    """
    size = os.path.getsize(path)
    name = filename or os.path.basename(path)
    http = session or requests.Session()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = gateway_url.rstrip("/") + "/"
    if part_size is None:
        answer = http.get(urljoin(base, "function/upload"), headers=headers, timeout=60)
        if not answer.ok:
            raise UploadError(f"reading the upload limits failed: HTTP {answer.status_code}", answer.status_code,
                              _answer_body(answer))
        part_size = int(answer.json()["part_size"])

    request: dict[str, Any] = {"filename": name, "size": size, "part_size": part_size}
    if tag is not None:
        request["tag"] = tag
    sha256 = None
    if checksums:
        sections = [(0, size)] if size <= part_size else [(o, n) for _, o, n in plan_parts(size, part_size)]
        request["part_crc32"] = file_part_crc32(path, sections)
        if len(sections) == 1:
            # A single PUT may be registered (on its storage event) before the completion call.
            request["sha256"] = file_sha256(path)
        else:
            sha256 = _Sha256InBackground(path)
    answer = http.post(urljoin(base, "function/upload"), json=request, headers=headers, timeout=60)
    if answer.status_code not in (200, 201):
        raise UploadError(f"creating the upload failed: HTTP {answer.status_code}", answer.status_code,
                          _answer_body(answer))
    plan = answer.json()
    bar = Progress(size, name, enabled=progress)

    # Presigned URLs carry their own authorisation: never send the bearer token to storage.
    if plan.get("single"):
        single = plan["single"]
        etag = _put_section(http, single["url"], path, 0, size, retries, bar, "upload", timeout,
                            single.get("headers"))
        parts = [{"number": 1, "etag": etag}]
        done_body: dict[str, Any] = {"parts": []}
    elif plan.get("multipart"):
        planned = plan["multipart"]["parts"]
        if sum(p["size"] for p in planned) != size:
            raise UploadError("the gateway's part plan does not cover the file")

        def send(part: dict[str, Any]) -> dict[str, Any]:
            etag = _put_section(http, part["url"], path, part["offset"], part["size"], retries, bar,
                                f"part {part['number']}", timeout, part.get("headers"))
            return {"number": part["number"], "etag": etag}

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            parts = list(pool.map(send, planned))
        done_body = {"parts": parts}
    else:
        raise UploadError("the gateway answered neither a single URL nor a multipart plan", body=plan)
    bar.finish()
    if sha256 is not None:
        done_body["sha256"] = sha256.result()

    complete_url = urljoin(base, plan.get("complete_url", f"/function/upload/{plan['uuid']}/complete").lstrip("/"))
    for attempt in range(retries + 1):
        try:
            answer = http.post(complete_url, json=done_body, headers=headers, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout):
            if attempt == retries:
                raise
        else:
            if answer.status_code not in RETRY_STATUSES or attempt == retries:
                break
        time.sleep(min(0.5 * 2 ** attempt, 8.0))
    if not answer.ok:
        raise UploadError(f"completing the upload failed: HTTP {answer.status_code}", answer.status_code,
                          _answer_body(answer))
    result = answer.json()
    result.setdefault("uuid", plan.get("uuid"))
    result["parts"] = parts
    return result
