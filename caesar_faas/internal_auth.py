"""Credentials the platform's own callers (the connector, cron) present to internal functions.

Internal functions (dispatcher, registrar, monitor) act on events that change job and file state;
they must not be callable by users through the gateway, so they require the `system` role."""

from __future__ import annotations

from .config import Settings, read_secret
from .errors import Forbidden
from .tokens import mint_token

SYSTEM_ROLE = "system"
SYSTEM_SUBJECT = "caesar-system"


def service_token(settings: Settings, ttl: int = 300) -> str | None:
    """A short-lived token: CAESAR_INTERNAL_TOKEN (secret `caesar-internal-token`) when given,
    else an HS256 token minted from the shared JWT secret; None when auth is off."""
    given = read_secret("caesar-internal-token", "CAESAR_INTERNAL_TOKEN")
    if given:
        return given
    if settings.auth_mode == "off" or not settings.jwt_secret:
        return None
    return mint_token(settings.jwt_secret, SYSTEM_SUBJECT, [SYSTEM_ROLE], ttl, audience=settings.jwt_audience,
                      issuer=settings.jwt_issuer, roles_claim=settings.roles_claim)


def auth_headers(settings: Settings) -> dict[str, str]:
    token = service_token(settings)
    return {"Authorization": f"Bearer {token}"} if token else {}


def require_system(principal: object) -> None:
    roles: frozenset[str] = getattr(principal, "roles", frozenset())
    if SYSTEM_ROLE not in roles and not getattr(principal, "is_admin", False):
        raise Forbidden("this function is internal to the platform", code="internal_function")
