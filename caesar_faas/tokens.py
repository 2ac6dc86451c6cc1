"""Mint HS256 bearer tokens from the configured secret (local stack, tests, scripts).

    python -m caesar_faas.tokens --user alice --roles admin [--ttl 3600]

prints only the token on stdout, so `TOKEN=$(python -m caesar_faas.tokens --user alice)` works.
The secret is CAESAR_JWT_SECRET / the OpenFaaS secret file when set, else <CAESAR_HOME>/jwt.secret
(created when missing, the same file `make run` uses). Audience and issuer are added when
configured, so the token passes the service's checks.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence

import jwt

from .auth.local import ensure_local_secret, secret_path
from .auth.principal import is_valid_owner
from .config import Settings, load_settings

MAX_TTL = 31 * 24 * 3600  # auth.bearer.MAX_TOKEN_LIFETIME: longer tokens are refused


def mint_token(secret: str, user: str, roles: Iterable[str] = (), ttl: int = 3600, *,
               audience: str | None = None, issuer: str | None = None, roles_claim: str = "roles",
               now: float | None = None) -> str:
    """An HS256 token for `user` with `roles`, valid for `ttl` seconds from `now`."""
    if not is_valid_owner(user):
        raise ValueError("user must match [A-Za-z0-9._@-]{1,128}")
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"ttl must be between 1 and {MAX_TTL} seconds")
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {"sub": user, "iat": issued, "nbf": issued, "exp": issued + ttl,
                                 roles_claim: sorted(set(roles))}
    if audience:
        claims["aud"] = audience.split(",")[0].strip()
    if issuer:
        claims["iss"] = issuer.split(",")[0].strip()
    return jwt.encode(claims, secret, algorithm="HS256")


def mint_for(settings: Settings, user: str, roles: Iterable[str] = (), ttl: int = 3600) -> str:
    """A token the service configured by `settings` accepts (used by `make run` to print one)."""
    return mint_token(ensure_local_secret(settings), user, roles, ttl, audience=settings.jwt_audience,
                      issuer=settings.jwt_issuer, roles_claim=settings.roles_claim)


def _roles(values: Sequence[str]) -> list[str]:
    # Accept "--roles admin,ops", "--roles admin ops" and repeated flags alike.
    return [role for value in values for role in value.replace(",", " ").split()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caesar_faas.tokens", description=__doc__.split("\n")[0])
    parser.add_argument("--user", required=True, help="owner id, the token's sub")
    parser.add_argument("--roles", nargs="*", action="extend", default=[], help="e.g. admin")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        token = mint_for(settings, args.user, _roles(args.roles), args.ttl)
    except ValueError as exc:
        parser.error(str(exc))
    if not settings.jwt_secret:
        # Only the path, never the secret: tells which stack will accept this token.
        print(f"signed with the local secret in {secret_path(settings)}", file=sys.stderr)
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
