"""Who is calling: the owner id every record is scoped by, and their roles.

The owner comes from the token's `sub` claim as is (caesar-rest mangled e-mail addresses into
owner names; two addresses could collide). It must be a short string of safe characters because
it ends up in storage keys, Kubernetes labels and log lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OWNER_RE = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
ADMIN_ROLE = "admin"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    owner: str
    roles: frozenset[str]
    is_admin: bool

    def can_see(self, owner: str) -> bool:
        """True when this caller may read or change records owned by `owner`."""
        return self.is_admin or owner == self.owner


def is_valid_owner(value: Any) -> bool:
    return isinstance(value, str) and bool(OWNER_RE.match(value))


def make_principal(owner: str, roles: Iterable[str]) -> Principal:
    role_set = frozenset(roles)
    return Principal(owner=owner, roles=role_set, is_admin=ADMIN_ROLE in role_set)


# The single local user when CAESAR_AUTH=off: the only person on a loopback-bound stack, who
# must be able to do everything (set quotas, read accounting), so it is also admin.
LOCAL_ANONYMOUS = make_principal(ANONYMOUS, [ADMIN_ROLE])


def roles_from_claims(claims: Mapping[str, Any], claim: str) -> frozenset[str]:
    """Roles from `claim`: a list of strings or a space-separated string (like `scope`).

    The claim name is looked up literally first (URI-style names such as
    "https://example.org/roles" contain dots), then as a dotted path into nested objects
    (Keycloak puts realm roles at "realm_access.roles"). Anything else means no roles.
    """
    value: Any = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(item for item in value if isinstance(item, str) and item)
    return frozenset()
