"""caesar_client.Client: one method per route of the native API (openapi.yaml)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from . import config
from .errors import CaesarError, InvalidFile, JobFailed, WaitTimeout
from .progress import JobBar, bar, enabled
from .transport import Transport
from .uploads import MULTIPART_OVERHEAD, ResumeBook, file_sha256, upload_inline, upload_presigned

TERMINAL = ("SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED")
FAILED = ("FAILURE", "TIMED-OUT", "ABORTED")
LONG_POLL = 30  # seconds one status request may be held (the server allows up to 60)


class NotFinished(CaesarError):
    """The job has not ended yet, so its products (and its log) do not exist yet."""

    def __init__(self, message: str, job: dict[str, Any]) -> None:
        super().__init__(message, status=202, code="not_finished", body=job)
        self.job = job


class Client:
    """A caesar-faas gateway. url/token: arguments, then CAESAR_URL / CAESAR_TOKEN, then the
    config file `caesar login` writes. Errors raise caesar_client.errors exceptions."""

    def __init__(self, url: str | None = None, token: str | None = None, *, retries: int = 4,
                 backoff: float = 0.5, timeout: float = 60.0, progress: bool | None = None) -> None:
        settings = config.resolve(url, token)
        self.url = settings.url
        self.token = settings.token
        self.token_source = settings.source
        self.progress = progress
        self.http = Transport(self.url, self.token, retries=retries, backoff=backoff, timeout=timeout)
        self.resume_book = ResumeBook(config.state_dir() / "uploads")

    # ---- public routes ----

    def health(self) -> dict[str, Any]:
        """GET /healthz: 200 only when NATS, storage and the store answer."""
        return self.http.json("GET", "healthz", what="health", accept=(503,))

    def openapi(self) -> str:
        """GET /openapi.yaml: the API description."""
        return self.http.request("GET", "openapi.yaml", what="openapi.yaml").text

    def whoami(self) -> dict[str, Any]:
        """The token's claims (read locally, not verified) and whether the server accepts it;
        raises Unauthorized when it does not."""
        claims = token_claims(self.token) if self.token else {}
        usage = self.accounting()
        return {"url": self.url, "user": claims.get("sub") or usage.get("user"), "roles": claims.get("roles"),
                "expires": claims.get("exp"), "token_source": self.token_source, "usage": usage.get("usage"),
                "limits": usage.get("limits")}

    # ---- files ----

    def upload_limits(self) -> dict[str, Any]:
        """GET /function/upload: part size, inline limit, URL lifetime."""
        return self.http.json("GET", "function/upload", what="reading the upload limits")

    def upload(self, path: str | os.PathLike[str], tag: str | None = None, *, presigned: bool | None = None,
               wait: bool = True, wait_timeout: float = 300.0, part_size: int | None = None, workers: int = 4,
               resume: bool = True, on_part: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Upload a FITS image; the file record (`uuid`, `state`...). Inline below the server's
        inline limit, presigned multipart above it (presigned=True/False forces one). A
        presigned upload is registered on the storage event: with wait, this returns once the
        file is `ready` (InvalidFile if the server refused it). An interrupted presigned
        upload of the same file resumes where it stopped."""
        source = Path(path)
        if not source.is_file():
            raise CaesarError(f"{source}: no such file")
        if presigned is None:
            limit = int(self.upload_limits()["max_inline_upload"])
            presigned = source.stat().st_size + MULTIPART_OVERHEAD > limit
        if not presigned:
            return upload_inline(self.http, source, tag, self.progress)
        result = upload_presigned(self.http, source, tag=tag, part_size=part_size, progress=self.progress,
                                  workers=workers, book=self.resume_book if resume else None, on_part=on_part)
        transfer: dict[str, Any] = {k: result[k] for k in ("parts_sent", "resumed") if k in result}
        if not wait:
            return {**result, "presigned": True}
        record = self.wait_registered(result["uuid"], timeout=wait_timeout)
        return {**record, **transfer, "presigned": True}

    def wait_registered(self, file_id: str, timeout: float = 300.0) -> dict[str, Any]:
        """The file record once the storage event registered it (ready), InvalidFile if refused."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            record = self.file(file_id)
            if record.get("state") == "ready":
                return record
            if record.get("state") == "invalid":
                raise InvalidFile(f"{record.get('filename_orig')}: {record.get('status')}", code="invalid_file",
                                  body=record)
            if time.monotonic() + delay > deadline:
                raise CaesarError(f"file {file_id} not registered after {timeout:.0f} s (state "
                                  f"{record.get('state')})", body=record)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def upload_state(self, file_id: str) -> dict[str, Any]:
        """GET /function/upload/<id>: an unfinished presigned upload's parts received so far and
        fresh URLs for the others (the file record once it is finished)."""
        return self.http.json("GET", f"function/upload/{file_id}", what=f"upload {file_id}")

    def files(self, tag: str | None = None, *, all_users: bool = False, page_size: int = 100,
              limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Every file of the caller (admins: all_users), newest first, page after page."""
        params: dict[str, Any] = {"tag": tag, "all": "1" if all_users else None}
        yield from self._pages("function/files", "files", params, page_size, limit, "listing files")

    def file_ids(self) -> list[str]:
        """GET /function/files/ids (caesar-rest's fileids)."""
        return list(self.http.json("GET", "function/files/ids", what="listing file ids")["file_ids"])

    def file(self, file_id: str) -> dict[str, Any]:
        return self.http.json("GET", f"function/files/{file_id}", what=f"file {file_id}")

    def download(self, file_id: str, path: str | os.PathLike[str] | None = None) -> Path:
        """The file's bytes into `path` (a file, or a folder to put it in under its own name;
        default: the current folder); the path written. The sha256 is checked when known."""
        record = self.file(file_id)
        target = Path(path) if path is not None else Path.cwd()
        if target.is_dir() or (path is not None and str(path).endswith(os.sep)):
            target = target / safe_name(record.get("filename_orig") or file_id)
        answer = self.http.request("GET", f"function/files/{file_id}/content", what=f"downloading {file_id}",
                                   stream=True, timeout=max(self.http.timeout, 600.0))
        written = self._save(answer, target, record.get("filename_orig") or file_id)
        if record.get("sha256") and file_sha256(written) != record["sha256"]:
            written.unlink()
            raise CaesarError(f"{file_id}: the downloaded bytes do not match the recorded sha256")
        return written

    def delete(self, file_id: str) -> dict[str, Any]:
        return self.http.json("DELETE", f"function/files/{file_id}", what=f"deleting {file_id}")

    # ---- apps ----

    def apps(self) -> list[str]:
        return list(self.http.json("GET", "function/describe", what="listing apps")["apps"])

    def describe(self, app: str) -> dict[str, dict[str, Any]]:
        """The app's options: name -> {type, default, min, max, allowed_values, description...}."""
        return self.http.json("GET", f"function/describe/{app}", what=f"app {app}")

    # ---- jobs ----

    def submit(self, app: str, input: str | os.PathLike[str], options: dict[str, Any] | None = None, *,
               tag: str | None = None, timeout: int | None = None) -> dict[str, Any]:
        """Submit a job on a file id, or on a local path (uploaded first); the PENDING job."""
        file_id = str(input)
        if isinstance(input, os.PathLike) or os.path.exists(file_id):
            file_id = self.upload(input, tag=tag)["uuid"]
        body: dict[str, Any] = {"app": app, "data_inputs": file_id, "job_inputs": dict(options or {})}
        if tag is not None:
            body["tag"] = tag
        if timeout is not None:
            body["timeout"] = timeout
        return self.http.json("POST", "function/submit", what=f"submitting {app}", json=body)

    def status(self, job_id: str, *, wait: int | None = None, state: str | None = None,
               progress: int | None = None) -> dict[str, Any]:
        """GET /function/status/<id>; with wait the server holds the answer up to `wait` s until
        the state differs from `state` (or the progress from `progress`)."""
        params = {"wait": wait, "state": state, "progress": progress}
        hold = wait or 0
        return self.http.json("GET", f"function/status/{job_id}", what=f"job {job_id}",
                              params={k: v for k, v in params.items() if v is not None},
                              timeout=self.http.timeout + hold)

    def wait(self, job_id: str, timeout: float | None = None, *, on_update: Callable[[dict[str, Any]], None] | None = None,
             raise_on_failure: bool = False, show_progress: bool | None = None) -> dict[str, Any]:
        """Block until the job ends, through the server's long poll (each request is held until
        the state or progress changes: no busy loop); the final status. WaitTimeout after
        `timeout` s; JobFailed with raise_on_failure when it ended FAILURE/TIMED-OUT/ABORTED."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.status(job_id)
        shown = JobBar(f"{job.get('app', '')} {job_id[:8]}", enabled(self.progress if show_progress is None
                                                                      else show_progress))
        try:
            while True:
                shown.show(job)
                if on_update:
                    on_update(job)
                if job.get("state") in TERMINAL:
                    break
                left = LONG_POLL if deadline is None else int(min(LONG_POLL, deadline - time.monotonic()))
                if left <= 0:
                    raise WaitTimeout(f"job {job_id} still {job.get('state')} after {timeout:.0f} s", job)
                job = self.status(job_id, wait=left, state=job.get("state"), progress=job.get("progress"))
        finally:
            shown.close()
        if raise_on_failure and job.get("state") in FAILED:
            raise JobFailed(f"job {job_id} ended {job.get('state')}: {job.get('status')}", job)
        return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.http.json("POST", f"function/cancel/{job_id}", what=f"cancelling {job_id}")

    def jobs(self, state: str | None = None, app: str | None = None, tag: str | None = None, *,
             all_users: bool = False, page_size: int = 100, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The caller's jobs, newest first, page after page; `limit` stops after that many."""
        params = {"state": state, "app": app, "tag": tag, "all": "1" if all_users else None}
        yield from self._pages("function/jobs", "jobs", params, page_size, limit, "listing jobs")

    # ---- outputs ----

    def products(self, job_id: str) -> list[dict[str, Any]]:
        """The finished job's products: [{name, size, sha256, media_type}] from its manifest
        (names only, from the job, when it has no manifest)."""
        job = self.status(job_id)
        self._require_finished(job)
        names = list(job.get("products") or [])
        if "manifest.json" in names:
            entries = json.loads(self._product_bytes(job_id, "manifest.json"))
            return [*entries, {"name": "manifest.json", "media_type": "application/json"}]
        return [{"name": name} for name in names]

    def download_product(self, job_id: str, name: str, folder: str | os.PathLike[str] = ".") -> Path:
        """One product into `folder`; the path written."""
        answer = self.http.request("GET", f"function/output/{job_id}/{name}", what=f"{name} of {job_id}",
                                   stream=True, accept=(202,), timeout=max(self.http.timeout, 600.0))
        if answer.status_code == 202:
            self._require_finished(answer.json())
        return self._save(answer, Path(folder) / safe_name(name), name)

    def download_outputs(self, job_id: str, folder: str | os.PathLike[str] = ".", *, unpack: bool = True) -> list[Path]:
        """Every product: the tar.gz unpacked into `folder` (the files directly in it), or with
        unpack=False the archive itself as folder/<job_id>.tar.gz. The paths written; unpacked
        products are checked against the manifest's sha256."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        answer = self.http.request("GET", f"function/output/{job_id}", what=f"products of {job_id}", stream=True,
                                   accept=(202,), timeout=max(self.http.timeout, 600.0))
        if answer.status_code == 202:
            self._require_finished(answer.json())
        archive = self._save(answer, target / f"{job_id}.tar.gz", "products")
        if not unpack:
            return [archive]
        try:
            written = unpack_products(archive, target)
        finally:
            archive.unlink(missing_ok=True)
        check_manifest(target, written)
        return written

    def log(self, job_id: str) -> str:
        """The job's log (job.log, published when the job ends); NotFinished before."""
        return self._product_bytes(job_id, "job.log").decode("utf-8", errors="replace")

    # ---- accounting ----

    def accounting(self, user: str | None = None, *, all_users: bool = False) -> dict[str, Any]:
        """The caller's usage, limits and figures (admins: another user, or everyone)."""
        params = {"user": user, "all": "1" if all_users else None}
        return self.http.json("GET", "function/accounting", what="accounting",
                              params={k: v for k, v in params.items() if v is not None})

    def app_stats(self) -> dict[str, Any]:
        """Per-app figures (admin)."""
        return self.http.json("GET", "function/accounting/apps", what="app figures")

    def limits(self, user: str) -> dict[str, Any]:
        """A user's quota limits (admin)."""
        return self.http.json("GET", f"function/accounting/limits/{user}", what=f"limits of {user}")

    def set_limits(self, user: str, **limits: int | None) -> dict[str, Any]:
        """Per-user quota overrides (admin): bytes, files, queued_jobs, running_jobs,
        max_job_timeout; None removes one."""
        return self.http.json("PUT", f"function/accounting/limits/{user}", what=f"limits of {user}", json=limits)

    # ---- helpers ----

    def _pages(self, path: str, key: str, params: dict[str, Any], page_size: int, limit: int | None,
               what: str) -> Iterator[dict[str, Any]]:
        query = {k: v for k, v in params.items() if v is not None}
        count = 0
        cursor = None
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - count))
            page = self.http.json("GET", path, what=what, params={**query, "limit": size,
                                                                  **({"cursor": cursor} if cursor else {})})
            for item in page.get(key, []):
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def _require_finished(self, job: dict[str, Any]) -> None:
        if job.get("state") not in TERMINAL:
            raise NotFinished(f"job {job.get('job_id')} is {job.get('state')} ({job.get('progress', 0)}%): its "
                              "products exist once it ends", job)

    def _product_bytes(self, job_id: str, name: str) -> bytes:
        answer = self.http.request("GET", f"function/output/{job_id}/{name}", what=f"{name} of {job_id}",
                                   accept=(202,))
        if answer.status_code == 202:
            self._require_finished(answer.json())
        return answer.content

    def _save(self, answer: Any, target: Path, label: str) -> Path:
        """Stream an answer into target (through a temporary file: never a half-written file)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        total = int(answer.headers.get("Content-Length") or 0)
        fd, tmp = tempfile.mkstemp(prefix=".caesar-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, bar(total, label, self.progress if total else False) as shown:
                for chunk in answer.iter_content(chunk_size=1024 * 1024):
                    out.write(chunk)
                    shown.update(len(chunk))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            answer.close()
        return target


def token_claims(token: str) -> dict[str, Any]:
    """A JWT's payload, decoded without checking the signature (the server does that)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def safe_name(name: str) -> str:
    """A server-given name as a plain file name (no folders, nothing hidden)."""
    base = PurePosixPath(unquote(str(name)).replace("\\", "/")).name.lstrip(".")
    return base or "download"


def unpack_products(archive: Path, folder: Path) -> list[Path]:
    """Extract the products (archive root <job_id>/) directly into folder; only regular files,
    only plain names: a hostile archive cannot write outside folder."""
    written = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = safe_name(member.name)
            source = tar.extractfile(member)
            if source is None:
                continue
            target = folder / name
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
            written.append(target)
    return written


def check_manifest(folder: Path, written: list[Path]) -> None:
    manifest = folder / "manifest.json"
    if manifest not in written:
        return
    names = {path.name for path in written}
    for entry in json.loads(manifest.read_text()):
        name = safe_name(entry.get("name", ""))
        if name in names and entry.get("sha256") and file_sha256(folder / name) != entry["sha256"]:
            raise CaesarError(f"{name}: the downloaded bytes do not match the job's manifest")
