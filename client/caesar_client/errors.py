"""Typed errors: each HTTP error class of the API has its own exception, carrying the server's
machine `error` code, its human message and, for a refused job option, the `option` at fault."""

from __future__ import annotations

from typing import Any


class CaesarError(Exception):
    """Anything the client could not do. `status` is the HTTP status (None without an answer)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 option: str | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.option = option
        self.body = body

    def __str__(self) -> str:
        return self.message


class ConnectionFailed(CaesarError):
    """The server could not be reached (after the retries)."""


class ApiError(CaesarError):
    """The server answered with an error (4xx/5xx)."""


class BadRequest(ApiError):
    """400: the request was refused; `option` names the job option at fault."""


class Unauthorized(ApiError):
    """401: no token, or one the server does not accept."""


class Forbidden(ApiError):
    """403."""


class NotFound(ApiError):
    """404: missing, or another user's (the same answer)."""


class Conflict(ApiError):
    """409: e.g. cancelling a job that already finished."""


class QuotaExceeded(ApiError):
    """413/429: a size limit or a quota; `body` holds `limit`, `used` and `max`."""


class InvalidFile(ApiError):
    """415/422: not a FITS image, or a FITS file without an image / truncated."""


class ServerError(ApiError):
    """5xx."""


class UploadError(CaesarError):
    """Bytes could not be sent to the storage (a presigned PUT failed after its retries)."""


class JobFailed(CaesarError):
    """The job ended FAILURE, TIMED-OUT or ABORTED; `job` is its last status."""

    def __init__(self, message: str, job: dict[str, Any]) -> None:
        super().__init__(message, code=str(job.get("state")), body=job)
        self.job = job


class WaitTimeout(CaesarError):
    """wait() ran out of time before the job ended; `job` is its last status."""

    def __init__(self, message: str, job: dict[str, Any]) -> None:
        super().__init__(message, body=job)
        self.job = job


_BY_STATUS: dict[int, type[ApiError]] = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
                                         409: Conflict, 413: QuotaExceeded, 429: QuotaExceeded,
                                         415: InvalidFile, 422: InvalidFile}


def from_answer(status: int, body: Any, what: str) -> ApiError:
    """The exception for an error answer; `body` is the decoded JSON (or text) of it."""
    doc = body if isinstance(body, dict) else {}
    code = doc.get("error") if isinstance(doc.get("error"), str) else None
    human = doc.get("status") if isinstance(doc.get("status"), str) else None
    if human is None:
        human = (body.strip()[:200] if isinstance(body, str) and body.strip() else f"HTTP {status}")
    option = doc.get("option") if isinstance(doc.get("option"), str) else None
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return kind(f"{what}: {human}", status=status, code=code, option=option, body=body)
