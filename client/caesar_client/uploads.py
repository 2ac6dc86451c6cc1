"""Sending a FITS image: inline (one multipart POST) below the server's inline limit, the
presigned flow above it (docs/large-uploads.md): ask the gateway where to send the bytes, PUT
them straight to storage (one URL, or one per multipart part, each retried on its own), then tell
the gateway the upload is complete.

Files are streamed from disk in blocks: memory use does not grow with the file size.

Integrity: a first pass computes each part's CRC32 (several parts at once), which the gateway
signs into the part's URL, so the store itself refuses a part that arrives damaged (S3
BadDigest). The file's sha256 is computed on a thread of its own, beside that pass and then
beside the parts' PUTs: a multipart file's sha256 is sent with the completion (a single PUT's
goes with the creation: its storage event may register the file first).

Resuming: the id of an unfinished presigned upload is remembered under the state folder, keyed by
the server, the file's path, size and modification time. Uploading the same file again asks the
gateway which parts it already holds (GET /function/upload/<id>) and sends only the others.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import requests

from .errors import NotFound, UploadError
from .progress import Bar, bar
from .transport import RETRY_STATUSES, Transport, answer_body, backoff_delays

READ_BLOCK = 1024 * 1024
# Storage answers worth retrying: its own transient failures (S3 sends 500/503 under load).
PUT_RETRY_STATUSES = RETRY_STATUSES | {408, 429, 500}


# ---- checksums, in S3's encoding (base64 of the 4 big-endian bytes, as in x-amz-checksum-crc32) ----

def crc32_b64(value: int) -> str:
    return base64.b64encode((value & 0xFFFFFFFF).to_bytes(4, "big")).decode("ascii")


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(READ_BLOCK)  # one buffer refilled: no new megabyte per block
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def section_crc32(path: str | os.PathLike[str], offset: int, size: int) -> str:
    """The CRC32 of bytes [offset, offset + size) of a file."""
    buffer = bytearray(min(READ_BLOCK, size) or 1)
    view = memoryview(buffer)
    value, left = 0, size
    with open(path, "rb", buffering=0) as fh:
        fh.seek(offset)
        while left:
            n = fh.readinto(view[:min(len(buffer), left)])
            if not n:
                raise UploadError(f"{path} is shorter than planned (it changed while being uploaded?)")
            value = zlib.crc32(view[:n], value)
            left -= n
    return crc32_b64(value)


CRC_THREADS = 4  # more would read one disk at too many places at once


def file_part_crc32(path: str | os.PathLike[str], sections: Iterable[tuple[int, int]],
                    threads: int | None = None) -> list[str]:
    """The CRC32 of each (offset, size) section of a file, several sections at once: zlib lets go
    of the GIL over a block, so each thread keeps a core busy (the parts cannot be signed, nor
    sent, before their CRCs are known)."""
    planned = list(sections)
    threads = max(1, min(len(planned), threads or min(CRC_THREADS, os.cpu_count() or 1)))
    if threads == 1:
        return [section_crc32(path, offset, size) for offset, size in planned]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="crc32") as pool:
        return list(pool.map(lambda section: section_crc32(path, *section), planned))


def sections(size: int, part_size: int) -> list[tuple[int, int]]:
    """(offset, size) of each part, as the gateway plans them (one section up to part_size)."""
    if size <= part_size:
        return [(0, size)]
    return [(offset, min(part_size, size - offset)) for offset in range(0, size, part_size)]


# ---- request bodies that stream from disk and report progress ----

class FileSection:
    """Bytes [offset, offset + size) of a file as a read()-able body with a known length.

    requests sends it with a Content-Length and reads it block by block; it has no fileno() on
    purpose (requests would then take the whole file's size)."""

    def __init__(self, path: str | os.PathLike[str], offset: int, size: int,
                 on_read: Callable[[int], None] | None = None, *, head: bytes = b"", tail: bytes = b"") -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close() / the with block
        self._fh.seek(offset)
        self._pieces = [head, None, tail]  # None: the file section
        self._file_left = size
        self._left = len(head) + size + len(tail)
        self._on_read = on_read

    def __len__(self) -> int:
        return self._left

    def read(self, n: int = -1) -> bytes:
        # http.client asks for 8 KiB at a time; answering with up to READ_BLOCK sends the part in
        # far fewer writes (several times faster against S3 servers that store streamed bodies).
        n = self._left if n is None or n < 0 else min(max(n, READ_BLOCK), self._left)
        if self._pieces and self._pieces[0] is None and n <= self._file_left:
            return self._read_file(n)  # the common case: bytes straight from the file, no copy
        out = bytearray()
        while len(out) < n and self._pieces:
            piece = self._pieces[0]
            want = n - len(out)
            if piece is None:
                chunk = self._read_file(min(want, self._file_left), counted=False) if self._file_left else b""
                if not self._file_left or not chunk:
                    self._pieces.pop(0)
            else:
                chunk, rest = piece[:want], piece[want:]
                if rest:
                    self._pieces[0] = rest
                else:
                    self._pieces.pop(0)
            out += chunk
        self._left -= len(out)
        return bytes(out)

    def _read_file(self, n: int, *, counted: bool = True) -> bytes:
        """Up to n bytes of the file section (counted: also taken off what is left to send)."""
        chunk = self._fh.read(n)
        self._file_left -= len(chunk)
        if counted:
            self._left -= len(chunk)
            if not self._file_left:
                self._pieces.pop(0)
        if chunk and self._on_read:
            self._on_read(len(chunk))
        return chunk

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> FileSection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def multipart_form(path: Path, fields: dict[str, str], boundary: str,
                   on_read: Callable[[int], None] | None) -> FileSection:
    """A multipart/form-data body (the `file` part last) streamed from disk."""
    head = b""
    for name, value in fields.items():
        head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").encode() \
            + value.encode("utf-8") + b"\r\n"
    quoted = "".join("_" if c in '"\\\r\n' else c for c in path.name)
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{quoted}\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n").encode()
    return FileSection(path, 0, path.stat().st_size, on_read, head=head, tail=f"\r\n--{boundary}--\r\n".encode())


MULTIPART_OVERHEAD = 1024  # bytes the form adds around the file (boundaries, headers, the tag)


def upload_inline(transport: Transport, path: Path, tag: str | None, progress: bool | None) -> dict[str, Any]:
    """One multipart POST; each attempt streams a fresh body from disk."""
    fields = {"tag": tag} if tag else {}
    boundary = f"caesar-{uuid.uuid4().hex}"
    opened: list[FileSection] = []
    with bar(path.stat().st_size, path.name, progress) as shown:
        def body() -> FileSection:
            shown.reset()
            opened.append(multipart_form(path, fields, boundary, shown.update))
            return opened[-1]

        try:
            return transport.json("POST", "function/upload", what=f"uploading {path.name}", body=body,
                                  headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                                  timeout=max(transport.timeout, 600.0))
        finally:
            for section in opened:
                section.close()


# ---- the presigned flow ----

class _Sha256InBackground:
    """file_sha256 on a daemon thread (hashlib releases the GIL, so it overlaps the part PUTs)."""

    def __init__(self, path: Path) -> None:
        self._result: str | BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="sha256", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
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


def put_section(http: requests.Session, url: str, path: Path, offset: int, size: int, retries: int,
                shown: Bar, what: str, timeout: float, headers: dict[str, str] | None = None) -> str:
    """PUT one section, retrying transient failures with backoff; the ETag of the stored bytes.
    Presigned URLs carry their own authorisation: the bearer token never goes to storage."""
    last: UploadError | None = None
    delays = backoff_delays(retries)
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(delays[attempt - 1])
        sent = 0

        def counted(n: int) -> None:
            nonlocal sent
            sent += n
            shown.update(n)

        try:
            with FileSection(path, offset, size, counted) as body:
                answer = http.put(url, data=body, headers=headers, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = UploadError(f"{what}: {exc.__class__.__name__}: {exc}")
        else:
            if answer.ok:
                etag = answer.headers.get("ETag", "").strip('"')
                if not etag:
                    raise UploadError(f"{what}: the storage answered without an ETag", status=answer.status_code)
                return etag
            body_doc = answer_body(answer)
            code = body_doc.get("error") if isinstance(body_doc, dict) else None
            last = UploadError(f"{what}: HTTP {answer.status_code}", status=answer.status_code, code=code,
                               body=body_doc)
            if answer.status_code not in PUT_RETRY_STATUSES:
                raise last  # 400/403/404 (BadDigest: the file changed): the same bytes cannot help
        shown.update(-sent)
    assert last is not None
    raise last


class ResumeBook:
    """Unfinished presigned uploads on disk: one small JSON file per (server, path, size, mtime)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _entry(self, server: str, path: Path) -> Path:
        st = path.stat()
        ident = f"{server}\0{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
        return self.folder / f"{hashlib.sha256(ident.encode()).hexdigest()[:32]}.json"

    def recall(self, server: str, path: Path) -> str | None:
        try:
            doc = json.loads(self._entry(server, path).read_text())
        except (OSError, ValueError):
            return None
        return doc.get("file_id") if isinstance(doc.get("file_id"), str) else None

    def remember(self, server: str, path: Path, file_id: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        entry = self._entry(server, path)
        entry.write_text(json.dumps({"file_id": file_id, "path": str(path.resolve()), "server": server}))

    def forget(self, server: str, path: Path) -> None:
        self._entry(server, path).unlink(missing_ok=True)


def upload_presigned(transport: Transport, path: Path, *, tag: str | None = None, part_size: int | None = None,
                     retries: int = 3, progress: bool | None = None, workers: int = 4, checksums: bool = True,
                     book: ResumeBook | None = None, on_part: Callable[[int], None] | None = None,
                     timeout: float = 600.0) -> dict[str, Any]:
    """Upload `path` through the presigned flow and return the completion answer (the file record
    with `uuid`; registration follows on the storage event) plus `parts` (number, etag),
    `parts_sent` and `resumed` (parts found already stored).

    part_size: asked of the gateway (its configured one when None: the CRCs depend on it).
    on_part(number) is called after each part is stored (tests interrupt an upload with it)."""
    size = path.stat().st_size
    resumed: dict[str, Any] | None = None
    file_id = book.recall(transport.url, path) if book else None
    if file_id:
        try:
            resumed = transport.json("GET", f"function/upload/{file_id}", what="resuming the upload")
        except NotFound:
            resumed = None
        if resumed is not None and resumed.get("state") != "pending":
            assert book is not None
            book.forget(transport.url, path)
            if resumed.get("state") == "ready":
                return {**resumed, "parts": [], "parts_sent": 0, "resumed": 0}
            resumed = None
    sha256: _Sha256InBackground | None = None
    if resumed is None:
        if part_size is None:
            part_size = int(transport.json("GET", "function/upload", what="reading the upload limits")["part_size"])
        request: dict[str, Any] = {"filename": path.name, "size": size, "part_size": part_size}
        if tag is not None:
            request["tag"] = tag
        if checksums:
            planned = sections(size, part_size)
            # The sha256 is needed only at completion (for a multipart upload): it runs on its
            # thread beside the CRC32s and then beside the parts' PUTs.
            sha256 = _Sha256InBackground(path)
            request["part_crc32"] = file_part_crc32(path, planned)
            if len(planned) == 1:
                request["sha256"] = sha256.result()  # a single PUT may be registered before completion
                sha256 = None
        plan = transport.json("POST", "function/upload", what=f"creating the upload of {path.name}", json=request)
        if book:
            book.remember(transport.url, path, plan["uuid"])
    else:
        plan = resumed
        if checksums and plan.get("multipart") and not plan.get("sha256"):
            sha256 = _Sha256InBackground(path)

    received = {int(p["number"]): str(p["etag"]) for p in plan.get("received") or []}
    http = transport.session
    with bar(size, path.name, progress) as shown:
        shown.update(sum(int(p.get("size", 0)) for p in plan.get("received") or []))
        if plan.get("single"):
            single = plan["single"]
            etag = put_section(http, single["url"], path, 0, size, retries, shown, "upload", timeout,
                               single.get("headers"))
            if on_part:
                on_part(1)
            parts: list[dict[str, Any]] = [{"number": 1, "etag": etag}]
            sent = 1
            done_body: dict[str, Any] = {"parts": []}
        elif plan.get("multipart"):
            todo = [p for p in plan["multipart"]["parts"] if int(p["number"]) not in received]
            covered = sum(p["size"] for p in todo) + sum(int(p.get("size", 0)) for p in plan.get("received") or [])
            if covered != size:
                raise UploadError("the gateway's part plan does not cover the file")
            etags = dict(received)
            _send_parts(http, path, todo, etags, retries, shown, timeout, workers, on_part)
            parts = [{"number": n, "etag": etags[n]} for n in sorted(etags)]
            sent = len(todo)
            done_body = {"parts": parts}
        else:
            raise UploadError("the gateway answered neither a single URL nor a multipart plan", body=plan)
    if sha256 is not None:
        done_body["sha256"] = sha256.result()
    complete = plan.get("complete_url") or f"/function/upload/{plan['uuid']}/complete"
    result = transport.json("POST", complete, what="completing the upload", json=done_body,
                            timeout=max(transport.timeout, timeout))
    if book:
        book.forget(transport.url, path)
    result.setdefault("uuid", plan.get("uuid"))
    return {**result, "parts": parts, "parts_sent": sent, "resumed": len(received)}


def _send_parts(http: requests.Session, path: Path, todo: list[dict[str, Any]], etags: dict[int, str],
                retries: int, shown: Bar, timeout: float, workers: int,
                on_part: Callable[[int], None] | None) -> None:
    """PUT the parts, `workers` at a time. On the first failure (or Ctrl-C) the parts not yet
    started are cancelled, so what is stored stays resumable."""

    def send(part: dict[str, Any]) -> None:
        etag = put_section(http, part["url"], path, part["offset"], part["size"], retries, shown,
                           f"part {part['number']}", timeout, part.get("headers"))
        etags[int(part["number"])] = etag
        if on_part:
            on_part(int(part["number"]))

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    futures: list[Future[None]] = []
    try:
        futures = [pool.submit(send, part) for part in todo]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()  # raises the first failure
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
