"""HTTP to the gateway: the bearer token, retries with exponential backoff on connection errors
and 502/503/504 only (never on a 4xx: the same request would get the same answer), and every
error answer turned into a typed exception."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from .errors import ApiError, ConnectionFailed, from_answer

RETRY_STATUSES = frozenset({502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def backoff_delays(retries: int, first: float = 0.5, cap: float = 8.0) -> list[float]:
    """Seconds to sleep before each further attempt: 0.5, 1, 2, 4, 8, 8, ..."""
    return [min(first * 2 ** n, cap) for n in range(retries)]


def answer_body(answer: requests.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text[:500]


class Transport:
    """One gateway, one token. `retries` further attempts after a transient failure."""

    def __init__(self, url: str, token: str | None, *, retries: int = 4, backoff: float = 0.5,
                 timeout: float = 60.0, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "caesar-client"

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        out = dict(extra or {})
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out

    def request(self, method: str, path: str, *, what: str, params: Mapping[str, Any] | None = None,
                json: Any = None, body: Callable[[], Any] | None = None, headers: Mapping[str, str] | None = None,
                stream: bool = False, timeout: float | None = None, accept: tuple[int, ...] = ()) -> requests.Response:
        """Send a request to `path` (relative to the gateway) and return a 2xx answer (or one of
        `accept`); raise the typed error otherwise. `body` makes a fresh body for each attempt
        (a stream cannot be sent twice)."""
        url = path if path.startswith(("http://", "https://")) else f"{self.url}/{path.lstrip('/')}"
        method = method.upper()
        delays = backoff_delays(self.retries, self.backoff)
        attempt = 0
        while True:
            try:
                answer = self.session.request(method, url, params=params, json=json,
                                              data=body() if body else None, headers=self.headers(headers),
                                              stream=stream, timeout=timeout or self.timeout, allow_redirects=False)
            except (requests.ConnectionError, requests.Timeout) as exc:
                # A read timeout after a POST may have been applied: do not send it twice.
                unsafe = isinstance(exc, requests.ReadTimeout) and method not in IDEMPOTENT
                if unsafe or attempt >= len(delays):
                    raise ConnectionFailed(f"{what}: cannot reach {self.url} ({exc.__class__.__name__})") from exc
            else:
                if answer.status_code < 400 or answer.status_code in accept:
                    return answer
                if answer.status_code not in RETRY_STATUSES or attempt >= len(delays):
                    raise from_answer(answer.status_code, answer_body(answer), what)
                answer.close()
            time.sleep(delays[attempt])
            attempt += 1

    def json(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        answer = self.request(method, path, what=what, **kwargs)
        try:
            return answer.json()
        except ValueError as exc:
            raise ApiError(f"{what}: the server answered something that is not JSON", status=answer.status_code,
                           body=answer.text[:500]) from exc
