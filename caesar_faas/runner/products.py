"""Write the job's products into workdir/products and upload them under the job's output prefix.

Order matters to readers of the prefix: the catalogue products first, then job.log (a snapshot
taken once the outcome is logged), then manifest.json last, so a manifest present means every
product it lists is in place.

Uploads go through a sink: straight to storage (CAESAR_STORAGE_URL), or one presigned PUT URL
per product name (CAESAR_JOB "transfer", contract.PRODUCT_NAMES) when the runner has no storage
access of its own."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from astropy.io import fits

from ..catalog.csvfile import write_csv
from ..catalog.ds9 import write_ds9
from ..catalog.fitsmaps import write_map
from ..catalog.frames import sky_frame
from ..catalog.jsonfile import write_json
from ..catalog.preview import Prepared, draw, prepare
from ..catalog.schema import COLUMNS
from ..catalog.values import ordered_rows
from ..catalog.votable import Envelope, ImageParam, votable_envelope, write_votable
from ..storage.base import Storage
from .background import in_thread
from .contract import CATALOG_CSV, CATALOG_JSON, CATALOG_VOT, JOB_LOG, MANIFEST, MAP_NAMES, PREVIEW, REGIONS
from .joblog import write_user_log
from .manifest import manifest_entry, media_type, write_manifest
from .presigned import TransferError, put_file

log = logging.getLogger("caesar_faas.runner.products")


def beam_radius_arcsec(header: fits.Header, fallback: float = 5.0) -> float:
    """Half the restoring beam's major axis: the circle drawn for a source without a fitted shape."""
    try:
        return float(header["BMAJ"]) * 3600.0 / 2.0
    except (KeyError, TypeError, ValueError):
        return fallback


def image_params(header: fits.Header, options: dict[str, Any]) -> list[ImageParam]:
    """The image's frequency and the beam the finder used, as VOTable PARAMs (those known)."""
    from .finders import UsageError
    from .finders.fitsinfo import beam_for, frequency_for

    out: list[ImageParam] = []
    try:
        frequency = frequency_for(header, options)
    except Exception:  # noqa: BLE001 - a header without a readable frequency: no PARAM
        frequency = None
    if frequency is not None:
        out.append(ImageParam("image_frequency", frequency, "Hz", "em.freq", "Observing frequency of the image"))
    try:
        beam = beam_for(header, options)
    except (UsageError, ValueError, TypeError):
        return out
    out += [
        ImageParam("beam_major", beam.bmaj * 3600.0, "arcsec", "phys.angSize.smajAxis;instr.beam",
                   "Restoring beam major axis FWHM"),
        ImageParam("beam_minor", beam.bmin * 3600.0, "arcsec", "phys.angSize.sminAxis;instr.beam",
                   "Restoring beam minor axis FWHM"),
        ImageParam("beam_pa", beam.bpa, "deg", "pos.posAng;instr.beam",
                   "Restoring beam position angle, East of North"),
    ]
    return out


def prepare_envelope(header: fits.Header, provenance: dict[str, Any]) -> Envelope:
    """The VOTable catalogue's document around its rows (the runner makes it while the finder
    runs; write_catalog_products uses it when the provenance is still the same)."""
    return votable_envelope(COLUMNS, provenance, frame=sky_frame(header),
                            image_params=image_params(header, provenance.get("options") or {}))


def write_catalog_products(rows: Sequence[dict[str, Any]], out_dir: Path, *, image_path: Path,
                           hdu_index: int, header: fits.Header, provenance: dict[str, Any],
                           maps: dict[str, Path] | None = None,
                           preview: Future[Prepared] | None = None,
                           envelope: Future[Envelope] | None = None) -> list[Path]:
    """Every catalogue product from the adapter's normalised rows, then the finder's maps as FITS
    with the input's WCS. The preview is best effort: a plotting problem must not cost the user
    the catalogue. `preview`: everything of it but the marks and title, prepared while the finder
    ran (start_preview); else prepared here. `envelope`: prepare_envelope's, made meanwhile."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = (int(header.get("NAXIS2", 0)), int(header.get("NAXIS1", 0)))
    # The maps (up to three images the size of the input) are rebuilt on a thread beside the
    # catalogue files: reading, converting and writing them lets go of the GIL for the most part.
    # One thread for all: astropy's header and warning filters are not for concurrent use.
    finder = str(provenance.get("app", ""))
    wanted = [(source, out_dir / name) for name in MAP_NAMES if (source := (maps or {}).get(name)) is not None]
    map_header = header.copy()
    written_maps = in_thread(lambda: [write_map(source, map_header, shape, dest, finder=finder)
                                      for source, dest in wanted])
    names = [column[0] for column in COLUMNS]
    clean = ordered_rows(rows, names)
    frame = sky_frame(header)
    options = provenance.get("options") or {}
    radius_pix = _beam_radius_pix(header)
    prepared = preview if preview is not None else in_thread(prepare, image_path, hdu_index)
    title = f"{provenance.get('input_filename') or image_path.name} · {provenance.get('app', '')} · {len(clean)} sources"
    # Drawn and PNG-encoded (Pillow lets go of the GIL) while the catalogue files are written.
    drawn = in_thread(lambda: draw(prepared.result(), clean, out_dir / PREVIEW, title=title,
                                   default_radius_pix=radius_pix))
    paths = [
        write_csv(clean, names, out_dir / CATALOG_CSV),
        write_votable(clean, COLUMNS, provenance, out_dir / CATALOG_VOT, frame=frame,
                      image_params=image_params(header, options), envelope=_made(envelope)),
        write_json(clean, COLUMNS, provenance, out_dir / CATALOG_JSON),
        write_ds9(clean, out_dir / REGIONS, circle_radius_arcsec=beam_radius_arcsec(header),
                  title=f"{provenance.get('app', '')} sources, job {provenance.get('job_id', '')}", frame=frame.ds9),
    ]
    try:
        paths.append(drawn.result())
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("the preview image could not be drawn; the other products are complete")
    paths.extend(written for written in written_maps.result() if written is not None)
    return paths


def _made(envelope: Future[Envelope] | None) -> Envelope | None:
    """The envelope made beforehand, or None (write_votable then makes it) if that failed."""
    if envelope is None:
        return None
    try:
        return envelope.result()
    except Exception:  # noqa: BLE001 - made again on the spot, where a real error is raised
        log.warning("the VOTable envelope prepared beside the finder failed; making it again", exc_info=True)
        return None


def _beam_radius_pix(header: fits.Header) -> float:
    try:
        return max(float(header["BMAJ"]) / abs(float(header["CDELT2"])) / 2.0, 1.0)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 3.0


class ProductSink(Protocol):
    def upload(self, path: Path) -> None:
        """Store the file at path as the product named path.name under the job's output prefix."""


@dataclass(frozen=True)
class StorageSink:
    """Products written with the runner's own storage access (the local backend)."""

    storage: Storage
    prefix: str

    def upload(self, path: Path) -> None:
        with open(path, "rb") as fh:
            self.storage.put(self.prefix + path.name, fh, size=path.stat().st_size,
                             content_type=media_type(path.name))


@dataclass(frozen=True)
class UrlSink:
    """Products PUT to the presigned URL made for each name (the Kubernetes backend): the URLs
    already point under the job's output prefix, and nowhere else."""

    product_urls: dict[str, str]

    def __repr__(self) -> str:  # the URLs are bearer credentials
        return f"UrlSink(<{len(self.product_urls)} URLs>)"

    def upload(self, path: Path) -> None:
        url = self.product_urls.get(path.name)
        if url is None:
            raise TransferError(f"no upload URL for the product {path.name}")
        put_file(url, path, content_type=media_type(path.name), what=path.name)


def upload_all(sink: ProductSink, paths: Sequence[Path]) -> None:
    for path in paths:
        sink.upload(path)
        log.info("uploaded %s (%d bytes)", path.name, path.stat().st_size)


def finish_uploads(sink: ProductSink, uploaded: Sequence[Path], log_path: Path, out_dir: Path) -> list[str]:
    """Snapshot and upload job.log, then the manifest of everything uploaded; returns the names
    of all products now under the job's output prefix."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for handler in logging.getLogger().handlers:
        handler.flush()
    snapshot = out_dir / JOB_LOG
    write_user_log(log_path, snapshot, log_path.parent)  # no colour codes, no server paths
    sink.upload(snapshot)
    products = [*uploaded, snapshot]
    manifest = write_manifest([manifest_entry(path) for path in products], out_dir / MANIFEST)
    sink.upload(manifest)
    return [path.name for path in products] + [MANIFEST]
