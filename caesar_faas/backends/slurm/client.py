"""HTTP calls to slurmrestd with JWT authentication (X-SLURM-USER-NAME / X-SLURM-USER-TOKEN).

The token is either static (secret `caesar-slurm-token` or CAESAR_SLURM_TOKEN, e.g. from
`scontrol token lifespan=...`) or, with CAESAR_SLURM_JWT_KEY, minted here the way caesar-rest
did: HS256 with Slurm's own jwt_hs256.key, claims {sun, iat, exp}, short-lived and renewed before
it expires. Neither the token nor the key ever reaches a log line or an error message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

from ...config import SlurmSettings

log = logging.getLogger(__name__)

RENEW_AT = 0.5  # a minted token is replaced once half of its lifetime has passed


class SlurmUnavailable(Exception):
    """slurmrestd could not be asked (unreachable, timed out, not JSON, no credentials)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


class TokenSource:
    """The X-SLURM-USER-TOKEN value for `settings.user`."""

    def __init__(self, settings: SlurmSettings, clock: Callable[[], float] = time.time) -> None:
        if not settings.token and not settings.jwt_key:
            raise ValueError("the Slurm backend needs a token: secret caesar-slurm-token, CAESAR_SLURM_TOKEN, "
                             "or CAESAR_SLURM_JWT_KEY (the path of Slurm's jwt_hs256.key)")
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._minted: tuple[str, float] | None = None  # (token, renew after)

    def token(self) -> str:
        if self._settings.jwt_key is None:
            return self._settings.token or ""
        with self._lock:
            now = self._clock()
            if self._minted is None or now >= self._minted[1]:
                lifetime = max(30, self._settings.jwt_lifetime)
                issued = int(now)
                claims = {"sun": self._settings.user, "iat": issued, "exp": issued + lifetime}
                self._minted = (jwt.encode(claims, self._key(), algorithm="HS256"), now + lifetime * RENEW_AT)
            return self._minted[0]

    def _key(self) -> bytes:
        try:
            with open(self._settings.jwt_key or "", "rb") as fh:
                return fh.read()
        except OSError as exc:  # the path is configuration, not a secret
            raise SlurmUnavailable(f"cannot read CAESAR_SLURM_JWT_KEY {self._settings.jwt_key}: "
                                   f"{exc.strerror or exc}") from None


class SlurmClient:
    def __init__(self, settings: SlurmSettings, *, clock: Callable[[], float] = time.time) -> None:
        if not settings.user:
            raise ValueError("CAESAR_SLURM_USER must name the Slurm account jobs are submitted as")
        self.settings = settings
        self.tokens = TokenSource(settings, clock)
        self._session = requests.Session()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
        """One request; the answer's status and JSON body. Raises SlurmUnavailable when there is
        no answer to read (connection refused, timeout, a body that is not a JSON object)."""
        headers = {"X-SLURM-USER-NAME": self.settings.user, "X-SLURM-USER-TOKEN": self.tokens.token(),
                   "Accept": "application/json"}
        url = self.settings.url + path
        try:
            response = self._session.request(method, url, json=body, headers=headers,
                                             timeout=self.settings.request_timeout)
        except requests.RequestException as exc:
            raise SlurmUnavailable(f"cannot reach slurmrestd at {self.settings.url}: {type(exc).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise SlurmUnavailable(f"slurmrestd answered {method} {path} with HTTP {response.status_code} "
                                   f"and no JSON ({response.text[:120]!r})")
        return Answer(response.status_code, data)
