"""caesar-rest's routes as pure path rewrites onto the functions, so that the same table works
in the local gateway and as ingress rewrite rules in a cluster (docs/aliases.md)."""

from __future__ import annotations

import re

PREFIX = "/caesar/api/v1.0"

# (caesar-rest path regex, function, path inside the function)
REWRITES: list[tuple[str, str, str]] = [
    (r"/upload", "upload", ""),
    (r"/fileids", "files", "ids"),
    (r"/download/([^/]+)", "files", r"\1/content"),
    (r"/delete/([^/]+)", "files", r"\1/delete"),
    (r"/apps", "describe", ""),
    (r"/app/([^/]+)/describe", "describe", r"\1"),
    (r"/job", "submit", ""),
    (r"/job/([^/]+)/status", "status", r"\1"),
    (r"/job/([^/]+)/output", "output", r"\1"),
    (r"/job/([^/]+)/cancel", "cancel", r"\1"),
    (r"/jobs", "jobs", ""),
    (r"/accounting", "accounting", ""),
    (r"/appstats", "accounting", "apps"),
]

_COMPILED = [(re.compile(re.escape(PREFIX) + pattern + r"/?$"), fn, target) for pattern, fn, target in REWRITES]


def rewrite(path: str) -> tuple[str, str] | None:
    """(function, path inside it) for a caesar-rest path, or None."""
    for regex, fn, target in _COMPILED:
        match = regex.match(path)
        if match:
            return fn, "/" + match.expand(target) if target else "/"
    return None
