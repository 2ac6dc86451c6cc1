"""Authenticate one HTTP request from its bearer token (issue 6, ARCHITECTURE §9).

Which key verifies a token is decided by us, never by the token: HS256 only with the shared
secret; RS*/ES* only with a JWKS key of the matching type and curve. So `alg: none`, an HS256
token "signed" with the provider's public key (algorithm confusion) or an algorithm a key was
not published for all fail. Every failure is the same 401 with a generic message; the reason
goes to the debug log, never the token itself.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jwt

from ..config import Settings
from ..errors import Unauthorized
from .jwks import ASYMMETRIC_ALGORITHMS, JwksCache, cache_for
from .local import auth_off_allowed
from .principal import LOCAL_ANONYMOUS, Principal, is_valid_owner, make_principal, roles_from_claims

log = logging.getLogger(__name__)

LEEWAY_SECONDS = 30
# No token may be valid for longer than this from now (the local token of `make run` lives 30 days).
MAX_TOKEN_LIFETIME = 31 * 24 * 3600
MAX_TOKEN_CHARS = 8192
QUERY_TOKEN_PARAMS = ("access_token", "token", "jwt")
REALM = "caesar"
GENERIC_MESSAGE = "missing or invalid bearer token"

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$")


class _Refused(Exception):
    """Internal: why a token was refused (logged at debug, never sent to the client)."""


def unauthorized(error: str | None = "invalid_token") -> Unauthorized:
    """The single 401 every failure answers. RFC 6750 §3.1: a request without any credentials
    gets no error code, a bad token gets "invalid_token", a token in the wrong place
    "invalid_request"."""
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}"'
    return Unauthorized(GENERIC_MESSAGE, headers={"WWW-Authenticate": challenge})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; HTTP header names are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, None when there is no header."""
    value = _header(headers, "Authorization")
    if value is None or not value.strip():
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _Refused("not a bearer authorization")
    if len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.match(token):
        raise _Refused("malformed token")
    return token


def _split(value: str | None) -> list[str] | None:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return items or None


def _verifying_key(token: str, settings: Settings, jwks: JwksCache | None) -> tuple[Any, str]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _Refused(f"bad header: {type(exc).__name__}") from None
    alg = header.get("alg")
    if alg == "HS256":
        if not settings.jwt_secret:
            raise _Refused("HS256 token but no shared secret configured")
        return settings.jwt_secret, alg
    if alg in ASYMMETRIC_ALGORITHMS:
        if not settings.jwks_url:
            raise _Refused(f"{alg} token but no JWKS URL configured")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _Refused("kid is not a string")
        cache = jwks or cache_for(settings.jwks_url)
        found = cache.key_for(kid, alg)
        if found is None:
            raise _Refused(f"no JWKS key for kid={kid!r} alg={alg}")
        return found.key, alg
    raise _Refused(f"algorithm {alg!r} not accepted")


# Verified tokens, so a client sending the same token request after request is checked once per
# minute, not on every request (two base64 decodes, a JSON parse and an HMAC or RSA check were
# most of a status request's time). An entry lives until the token expires or VERIFIED_MAX_AGE,
# whichever is first, and only for the verification settings it was checked with.
VERIFIED_MAX_AGE = 60.0
VERIFIED_CACHE_SIZE = 4096
_verified: OrderedDict[tuple[Any, ...], tuple[float, Principal]] = OrderedDict()
_verified_lock = threading.Lock()


def forget_verified() -> None:
    with _verified_lock:
        _verified.clear()


def _cache_key(token: str, settings: Settings) -> tuple[Any, ...]:
    return (token, settings.jwt_secret, settings.jwks_url, settings.jwt_audience, settings.jwt_issuer,
            settings.roles_claim)


def verify_token(token: str, settings: Settings, *, jwks: JwksCache | None = None) -> Principal:
    """The principal a valid token names; raises Unauthorized otherwise. A token verified in
    the last minute (and not expired since) is answered from memory; an explicit `jwks` (tests)
    always verifies."""
    if jwks is not None:
        return _verify(token, settings, jwks)[0]
    key = _cache_key(token, settings)
    now = time.monotonic()
    # Read without the lock (one dict lookup is atomic): every request passes here, and a lock
    # taken by all request threads is a queue where each waiter gives the GIL away. Eviction is
    # by age of insertion, which an entry's one-minute life makes as good as least-recent use.
    hit = _verified.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    principal, expires = _verify(token, settings, None)
    until = now + min(VERIFIED_MAX_AGE, expires + LEEWAY_SECONDS - time.time())
    with _verified_lock:
        _verified[key] = (until, principal)
        while len(_verified) > VERIFIED_CACHE_SIZE:
            _verified.popitem(last=False)
    return principal


def _verify(token: str, settings: Settings, jwks: JwksCache | None) -> tuple[Principal, float]:
    """(principal, exp) of a valid token; raises Unauthorized otherwise."""
    try:
        key, alg = _verifying_key(token, settings, jwks)
        audience = _split(settings.jwt_audience)
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=audience, issuer=_split(settings.jwt_issuer),
                leeway=LEEWAY_SECONDS,
                # aud is only checked when we expect one: OIDC providers put their own
                # audiences ("account") in tokens that are fine for us.
                options={"require": ["exp"], "verify_aud": audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise _Refused(f"{type(exc).__name__}: {exc}") from None
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):  # pyjwt casts "123" silently
            raise _Refused("exp is not a number")
        if exp - time.time() > MAX_TOKEN_LIFETIME + LEEWAY_SECONDS:
            raise _Refused("the token lives longer than the service allows")
        owner = claims.get("sub")
        if not isinstance(owner, str) or not is_valid_owner(owner):
            raise _Refused("sub missing or not a safe owner id")
        return make_principal(owner, roles_from_claims(claims, settings.roles_claim)), float(exp)
    except _Refused as exc:
        log.debug("bearer token refused: %s", exc)
        raise unauthorized() from None


def authenticate(headers: Mapping[str, str], query: Mapping[str, str], settings: Settings, *,
                 jwks: JwksCache | None = None) -> Principal:
    """Who sends this request. Raises Unauthorized (401 + WWW-Authenticate) on any failure.

    CAESAR_AUTH=off answers the single local user `anonymous`, who is admin (the only person on
    the machine), and is honoured only while the stack is bound to loopback: configured with a
    public address, every request is refused rather than served unauthenticated.
    """
    if any(name in query for name in QUERY_TOKEN_PARAMS):
        # Query strings end up in access logs, proxies and browser history.
        log.debug("bearer token refused: token passed in the query string")
        raise unauthorized("invalid_request")
    if settings.auth_mode == "off":
        if auth_off_allowed(settings.http_host):
            return LOCAL_ANONYMOUS
        log.error("CAESAR_AUTH=off refused: the stack listens on %s, not loopback", settings.http_host)
        raise unauthorized(None)
    try:
        token = bearer_token(headers)
    except _Refused as exc:
        log.debug("bearer token refused: %s", exc)
        raise unauthorized() from None
    if token is None:
        raise unauthorized(None)
    return verify_token(token, settings, jwks=jwks)
