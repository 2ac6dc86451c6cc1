"""caesar-rest's face: the `/caesar/api/v1.0/...` routes with caesar-rest's exact shapes, as a
thin layer over the same library as the native routes.

The alias rewrite (caesar_faas/local/aliases.py locally, an ingress rule in a cluster, both in
docs/aliases.md) sends `/caesar/api/v1.0/job/<id>/status` to `/function/status/caesar-rest/<id>`:
the path marker MARKER tells the function to answer in caesar-rest's shapes. The marker is only a
path; it passes the same token and owner checks as every route and reaches the same library
calls, so it grants nothing the native routes do not.
"""

from __future__ import annotations

from typing import Any

PREFIX = "/caesar/api/v1.0"  # where caesar-rest served its API
MARKER = "caesar-rest"


def marked(req: Any) -> bool:
    """True when the request came through a caesar-rest alias (its first path part is MARKER)."""
    return req.parts[:1] == [MARKER]


def route(req: Any) -> list[str]:
    """The path parts after the marker."""
    return req.parts[1:]
