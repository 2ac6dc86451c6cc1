"""caesar-rest's routes as pure path rewrites onto the functions, so that the same table works
in the local gateway and as ingress rewrite rules in a cluster (docs/aliases.md).

Most targets start with the path marker `caesar-rest/` (MARK, caesar_faas.caesar_rest.MARKER): the
function answers that path with caesar-rest's own shapes (status texts, 200 on upload, string
elapsed times, ...) instead of its native ones. The marker is only a path, so an nginx `rewrite`
adds it exactly as this table does; it grants nothing (the same token and owner checks apply),
and calling the marked path directly is the same as calling the alias."""

from __future__ import annotations

import re

from ..caesar_rest import MARKER as MARK
from ..caesar_rest import PREFIX

__all__ = ["PREFIX", "REWRITES", "rewrite"]

# (caesar-rest path regex, function, path inside the function)
REWRITES: list[tuple[str, str, str]] = [
    (r"/upload", "upload", MARK),
    (r"/fileids", "files", f"{MARK}/ids"),
    (r"/download", "files", f"{MARK}/download"),
    (r"/download/([^/]+)", "files", rf"{MARK}/download/\1"),
    (r"/delete/([^/]+)", "files", rf"{MARK}/delete/\1"),
    (r"/apps", "describe", MARK),
    (r"/app/([^/]+)/describe", "describe", rf"{MARK}/\1"),
    (r"/job", "submit", MARK),
    (r"/job/([^/]+)/status", "status", rf"{MARK}/\1"),
    (r"/job/([^/]+)/cancel", "cancel", rf"{MARK}/\1"),
    (r"/job/([^/]+)/output", "output", rf"{MARK}/\1"),
    # the product routes of caesar-rest's code
    (r"/job/([^/]+)/(sources|output-sources|source-components|output-components|preview|output-plot)",
     "output", rf"{MARK}/\1/\2"),
    (r"/jobs", "jobs", MARK),
    # accounting keeps the native shapes (caesar-rest's were per-deployment internals)
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
