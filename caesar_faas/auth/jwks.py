"""Public keys of an OIDC provider, fetched from its JWKS URL and cached per process.

Rules (issue 6): keys are cached; a token with an unknown `kid` triggers one refetch (key
rotation), but the provider is never asked more than once per `min_interval` seconds whatever
tokens arrive (an attacker sending random kids must not turn us into a flood). Cached keys are
also refreshed after `max_age` so a key the provider withdrew stops being trusted.

Only asymmetric signing keys are kept (RSA, EC): a symmetric "oct" key in a JWKS would let
anyone who can read that public document forge tokens. Each key remembers which algorithms it
may verify, so a token cannot pick a weaker or mismatched one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jwt.algorithms import get_default_algorithms

log = logging.getLogger(__name__)

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
EC_ALGORITHMS_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHMS_BY_CURVE.values())

MAX_DOCUMENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class VerifyingKey:
    kid: str | None
    algorithms: frozenset[str]
    key: Any  # a cryptography public key object


def _allowed_algorithms(jwk: dict[str, Any]) -> frozenset[str]:
    kty = jwk.get("kty")
    if kty == "RSA":
        allowed = RSA_ALGORITHMS
    elif kty == "EC":
        alg = EC_ALGORITHMS_BY_CURVE.get(jwk.get("crv", ""))
        allowed = frozenset({alg}) if alg else frozenset()
    else:
        return frozenset()
    declared = jwk.get("alg")
    if declared is not None:
        # A key published for one algorithm is used for that one only.
        return allowed & {declared}
    return allowed


def parse_jwks(document: Any) -> list[VerifyingKey]:
    """The usable signing keys of a JWKS document; unusable entries are skipped, not fatal."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    algorithms = get_default_algorithms()
    keys: list[VerifyingKey] = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        allowed = _allowed_algorithms(jwk)
        if not allowed:
            continue
        kid = jwk.get("kid")
        try:
            key = algorithms[next(iter(allowed))].from_jwk(jwk)
        except Exception as exc:  # noqa: BLE001 - one malformed key must not hide the others
            log.warning("skipping unusable JWKS key kid=%r: %s", kid, type(exc).__name__)
            continue
        if hasattr(key, "public_key"):
            key = key.public_key()  # never keep private material someone published by mistake
        keys.append(VerifyingKey(kid=kid if isinstance(kid, str) else None, algorithms=allowed, key=key))
    return keys


def fetch_jwks(url: str, timeout: float) -> list[VerifyingKey]:
    if not url.startswith(("https://", "http://")):
        raise ValueError("JWKS URL must be http(s)")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError("JWKS document too large")
    return parse_jwks(json.loads(body))


class JwksCache:
    """Thread-safe cache of one provider's keys (see module docstring for the refetch rules)."""

    def __init__(self, url: str, *, min_interval: float = 60.0, max_age: float = 3600.0,
                 timeout: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.min_interval = min_interval
        self.max_age = max_age
        self.timeout = timeout
        self.clock = clock
        self.fetches = 0  # attempts, successful or not (observability and tests)
        self._keys: list[VerifyingKey] = []
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt
        self._lock = threading.Lock()

    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self.min_interval

    def _refresh(self, now: float) -> None:
        """Fetch now (caller holds the lock and checked the rate limit). On failure the old keys
        stay: a provider outage must not log everybody out at once."""
        self._attempted_at = now
        self.fetches += 1
        try:
            self._keys = fetch_jwks(self.url, self.timeout)
            self._fetched_at = now
        except Exception as exc:  # noqa: BLE001 - reported, old keys kept
            log.warning("JWKS fetch from %s failed: %s", self.url, type(exc).__name__)

    def _lookup(self, kid: str | None, alg: str) -> VerifyingKey | None:
        candidates = [k for k in self._keys if alg in k.algorithms]
        if kid is None:
            # Tokens without kid are only acceptable when there is no ambiguity.
            return candidates[0] if len(candidates) == 1 else None
        return next((k for k in candidates if k.kid == kid), None)

    def key_for(self, kid: str | None, alg: str) -> VerifyingKey | None:
        """The key that may verify a token with this header, or None."""
        with self._lock:
            now = self.clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.max_age
            if stale and self._may_fetch(now):
                self._refresh(now)
            found = self._lookup(kid, alg)
            if found is None and self._may_fetch(now):
                self._refresh(now)  # maybe the provider rotated its keys
                found = self._lookup(kid, alg)
            return found


_caches: dict[str, JwksCache] = {}
_caches_lock = threading.Lock()


def cache_for(url: str) -> JwksCache:
    """The process-wide cache for `url` (functions build Settings per request; keys outlive them)."""
    with _caches_lock:
        cache = _caches.get(url)
        if cache is None:
            cache = _caches[url] = JwksCache(url)
        return cache


def reset_caches() -> None:
    """Forget every cached provider and every verified token (tests, or after a configuration
    change)."""
    from .bearer import forget_verified  # bearer imports this module

    with _caches_lock:
        _caches.clear()
    forget_verified()
