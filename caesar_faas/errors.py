"""Typed errors that every layer raises and the HTTP layer turns into JSON answers.

The JSON shape is caesar-rest's: {"error": "<code>", "status": "<human text>"}.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error with an HTTP status, a machine code and a human message."""

    http_status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "status": self.message, **self.extra}


class BadRequest(ApiError):
    http_status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    http_status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    http_status = 403
    code = "forbidden"


class NotFound(ApiError):
    http_status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    http_status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    http_status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    http_status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    http_status = 415
    code = "unsupported_media_type"


class Unprocessable(ApiError):
    http_status = 422
    code = "unprocessable"


class TooManyRequests(ApiError):
    http_status = 429
    code = "too_many_requests"


class ServiceUnavailable(ApiError):
    http_status = 503
    code = "unavailable"
