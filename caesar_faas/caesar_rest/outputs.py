"""caesar-rest's output routes: GET /job/<id>/output (tar.gz of everything) and the product
routes of its code (sources, output-sources, source-components, output-components, preview,
output-plot), over the same products as the native output function.

caesar-rest's island catalogue becomes our catalogue (catalog.json as JSON, catalog.csv as the
file); its fitted-component catalogue is the same catalogue when the app's rows are fitted
components (apps/spec.py `components`: aegean, pybdsf with catalog_type gaul), else 404; its
summary plot is preview.png."""

from __future__ import annotations

import base64
from typing import Any

from .. import downloads
from .. import outputs as library
from ..apps.registry import get_app
from ..errors import NotFound
from ..http import Request, method_not_allowed, respond, stream_response
from ..jobs.control import load_job
from ..runner.contract import CATALOG_CSV, CATALOG_JSON, PREVIEW, output_prefix
from ..runner.manifest import media_type
from ..storage.base import ObjectNotFound
from . import route, shapes
from .errors import CaesarRestError, job_not_found

MAX_PREVIEW = 32 * 1024 * 1024  # the preview is read whole to be base64-encoded

# route -> (product, served as a file (attachment) or as JSON/inline, components only)
PRODUCTS: dict[str, tuple[str, bool, bool]] = {
    "sources": (CATALOG_JSON, False, False),
    "output-sources": (CATALOG_CSV, True, False),
    "source-components": (CATALOG_JSON, False, True),
    "output-components": (CATALOG_CSV, True, True),
    "output-plot": (PREVIEW, True, False),
}
PREVIEW_ROUTE = "preview"


def output(req: Request, svc: Any, who: Any) -> Any:
    parts = route(req)
    if not 1 <= len(parts) <= 2 or (len(parts) == 2 and parts[1] not in (*PRODUCTS, PREVIEW_ROUTE)):
        raise NotFound("route not found", code="not_found")
    if req.method != "GET":
        raise method_not_allowed(req, "GET")
    try:
        job = load_job(svc.store, who.owner, parts[0], admin=who.is_admin)
    except NotFound as exc:
        raise job_not_found(parts[0], who.owner) from exc
    if not library.is_finished(job):
        return respond(202, shapes.not_completed(job))
    if len(parts) == 1:
        try:
            chunks = library.archive(svc.storage, job, root=f"job_{job['id']}")
        except NotFound as exc:
            raise _missing(job) from exc
        return stream_response(chunks, media_type="application/gzip", filename=f"job_{job['id']}.tar.gz")
    if parts[1] == PREVIEW_ROUTE:
        return respond(200, {"status": "", "image": base64.b64encode(_preview(svc, job)).decode("ascii")})
    name, as_file, components = PRODUCTS[parts[1]]
    if components:
        _require_components(job)
    key = output_prefix(job["owner"], job["id"]) + name
    try:
        return downloads.stream(svc, key, name if as_file else None, media_type(name))
    except NotFound as exc:
        raise _missing(job) from exc


def _preview(svc: Any, job: dict[str, Any]) -> bytes:
    key = output_prefix(job["owner"], job["id"]) + PREVIEW
    try:
        if svc.storage.stat(key).size > MAX_PREVIEW:
            raise CaesarRestError(404, f"The preview of job {job['id']} is too large to inline: get output-plot")
        return svc.storage.read_bytes(key)
    except ObjectNotFound as exc:
        raise _missing(job) from exc


def _require_components(job: dict[str, Any]) -> None:
    spec = get_app(job.get("app") or "")
    if spec is None or not spec.catalog_is_components(job.get("options") or {}):
        raise CaesarRestError(404, f"Job {job['id']} has no fitted-component catalogue: app {job.get('app')} "
                                   "lists sources, not fitted components, with these options "
                                   f"(its catalogue is at /job/{job['id']}/sources)")


def _missing(job: dict[str, Any]) -> CaesarRestError:
    return CaesarRestError(404, f"Cannot find desired output for job {job['id']}!")
