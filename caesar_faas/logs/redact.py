"""No token, signature, secret or presigned query string in any log line (issue 17 §1).

A structlog processor run last before rendering, on every line (ours and the libraries'):
fields named like credentials are replaced; in every text value, bearer tokens, JWTs, the query
strings of URLs (presigned URLs carry their signature there), passwords in URLs
(mongodb://user:pass@, smtp://...) and the exact values of the secrets this process was given
are masked. Masking a harmless query string costs a little detail; leaking one costs a credential."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import MutableMapping
from typing import Any

from ..config import SECRETS_DIR

MASK = "[redacted]"
SECRET_KEYS = re.compile(r"(?i)(token|secret|password|passwd|authorization|signature|cookie|credential|api_?key)")
PATTERNS = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), f"Bearer {MASK}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # user:password@ and token@ (how NATS takes a token) in any URL
    (re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@"), rf"\1{MASK}@"),
    (re.compile(r"\b((?:https?|s3|wss?)://[^\s?#'\"]+)\?[^\s'\"#]*"), rf"\1?{MASK}"),
    (re.compile(r"(?i)\b(X-Amz-(?:Signature|Credential|Security-Token)|signature|sig|token|access_token)=[^&\s'\"]+"),
     rf"\1={MASK}"),
)
# Every pattern above needs one of these in the text: one search finds most lines (a path, a
# state, a number as text) need none of the substitutions, which were a tenth of a status
# request's CPU when all of them ran on every value of every line.
MAY_HOLD_CREDENTIALS = re.compile(r"(?i)bearer|eyJ|://|=")
SECRET_ENV = re.compile(r"(SECRET|PASSWORD|TOKEN|_KEY$|DB_URL|SMTP_URL)")
MIN_SECRET = 8


def _known_secrets() -> list[str]:
    """The secret values given to this process (env vars and OpenFaaS secret files)."""
    values = {v.strip() for k, v in os.environ.items() if SECRET_ENV.search(k) and len(v.strip()) >= MIN_SECRET}
    try:
        for path in SECRETS_DIR.iterdir():
            try:
                value = path.read_text().strip()
            except OSError:
                continue
            if len(value) >= MIN_SECRET:
                values.add(value)
    except OSError:
        pass
    return sorted(values, key=len, reverse=True)


class Redactor:
    def __init__(self, secrets: list[str] | None = None) -> None:
        found = _known_secrets() if secrets is None else secrets
        self.exact = re.compile("|".join(re.escape(s) for s in found)) if found else None

    def text(self, value: str) -> str:
        if self.exact is not None:
            value = self.exact.sub(MASK, value)
        if MAY_HOLD_CREDENTIALS.search(value) is None:
            return value
        for pattern, replacement in PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def value(self, key: str, value: Any) -> Any:
        if _names_a_credential(key) and value not in (None, "", True, False):
            return MASK
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {str(k): self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(key, v) for v in value]
        return value

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
        return {key: (self.text(value) if key == "event" and isinstance(value, str) else self.value(key, value))
                for key, value in event.items()}


@functools.lru_cache(maxsize=1024)
def _names_a_credential(key: str) -> bool:
    """A field named like a credential. Lines reuse a few dozen names: each is matched once."""
    return SECRET_KEYS.search(key) is not None
