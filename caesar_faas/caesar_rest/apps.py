"""caesar-rest's GET /apps and GET /app/<name>/describe."""

from __future__ import annotations

from typing import Any

from ..apps.registry import get_app, list_apps
from ..errors import NotFound
from ..http import Request, method_not_allowed, respond
from . import route, shapes
from .errors import CaesarRestError


def describe(req: Request, svc: Any, who: Any) -> dict[str, Any]:
    parts = route(req)
    if req.method != "GET":
        raise method_not_allowed(req, "GET")
    if not parts:
        return respond(200, {"apps": [spec.name for spec in list_apps()]})
    if len(parts) != 1:
        raise NotFound("route not found", code="not_found")
    spec = get_app(parts[0])
    if spec is None:
        raise CaesarRestError(400, f"Unknown app {parts[0]}!")
    return respond(200, shapes.describe(spec))
