"""Authentication: bearer JWT verification (HS256 secret or an OIDC provider's JWKS), the
caller's Principal, and the local-stack rules (secret in the data folder, auth off on loopback
only). HTTP handlers call `authenticate(...)` once per request."""

from .bearer import authenticate, unauthorized, verify_token
from .jwks import JwksCache, reset_caches
from .local import auth_off_allowed, ensure_local_secret, secret_path
from .principal import ADMIN_ROLE, ANONYMOUS, OWNER_RE, Principal, is_valid_owner, roles_from_claims

__all__ = [
    "ADMIN_ROLE", "ANONYMOUS", "OWNER_RE", "JwksCache", "Principal", "auth_off_allowed", "authenticate",
    "ensure_local_secret", "is_valid_owner", "reset_caches", "roles_from_claims", "secret_path",
    "unauthorized", "verify_token",
]
