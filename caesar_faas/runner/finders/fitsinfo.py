"""What the finders need to know about an image, read from its FITS header, with clear refusals.

Radio images come in many shapes: 2-D, or 3-D/4-D with degenerate FREQ and STOKES axes; the
beam in BMAJ/BMIN/BPA or only in AIPS HISTORY cards; the frequency on a spectral axis or in
RESTFRQ/RESTFREQ/FREQ. The helpers below accept all of those and refuse the rest with a message
that tells the user what to do (UsageError).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from . import UsageError

MIN_SIDE = 16  # pixels: smaller images cannot hold a background box and a source
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
# Gaussian beam area in pixels = pi / (4 ln 2) * bmaj_pix * bmin_pix
BEAM_AREA_FACTOR = math.pi / (4.0 * math.log(2.0))
_AIPS_BEAM = re.compile(r"BMAJ=\s*([-+0-9.EeDd]+)\s+BMIN=\s*([-+0-9.EeDd]+)\s+BPA=\s*([-+0-9.EeDd]+)")


@dataclass(frozen=True)
class Beam:
    """Restoring beam: FWHM axes and position angle (East of North), all in degrees."""

    bmaj: float
    bmin: float
    bpa: float


@dataclass(frozen=True)
class ImageInfo:
    shape: tuple[int, int]  # (ny, nx)
    wcs: WCS  # celestial part, pixel axes (x, y)
    pixel_scale: tuple[float, float]  # |deg per pixel| along x and y

    @property
    def pixel_scale_arcsec(self) -> float:
        return 3600.0 * math.sqrt(self.pixel_scale[0] * self.pixel_scale[1])


def image_info(header: fits.Header) -> ImageInfo:
    """Check that the header describes one 2-D celestial image; UsageError otherwise."""
    naxis = int(header.get("NAXIS", 0) or 0)
    if naxis < 2:
        raise UsageError("The FITS primary HDU holds no 2-D image (NAXIS < 2); the image must be "
                         "in the primary HDU.")
    dims = [int(header.get(f"NAXIS{i}", 0) or 0) for i in range(1, naxis + 1)]
    if dims[0] < MIN_SIDE or dims[1] < MIN_SIDE:
        raise UsageError(f"The image is {dims[0]}x{dims[1]} pixels; at least {MIN_SIDE}x{MIN_SIDE} "
                         "is needed.")
    for i, n in enumerate(dims[2:], start=3):
        if n != 1:
            raise UsageError(f"The image is a cube with {n} planes along axis {i} "
                             f"({header.get(f'CTYPE{i}', '?')}); only single-plane images are "
                             "supported.")
    full = _wcs(header)
    if not full.has_celestial or sorted((full.wcs.lng, full.wcs.lat)) != [0, 1]:
        raise UsageError("The image has no celestial WCS on its first two axes (CTYPE1/CTYPE2 "
                         "such as RA---SIN/DEC--SIN); source positions could not be computed.")
    cel = full.celestial
    try:
        scale = np.abs(proj_plane_pixel_scales(cel))  # in CUNIT: wcslib normalises to deg
        centre = cel.all_pix2world([[dims[0] / 2, dims[1] / 2]], 0)
    except Exception as exc:  # noqa: BLE001 - any WCS failure is the same user problem
        raise UsageError(f"The image WCS cannot be evaluated ({exc}).") from exc
    if not (np.all(np.isfinite(centre)) and np.all(scale > 0) and np.all(np.isfinite(scale))):
        raise UsageError("The image WCS gives no valid sky position or pixel size.")
    return ImageInfo(shape=(dims[1], dims[0]), wcs=cel, pixel_scale=(float(scale[0]), float(scale[1])))


def header_beam(header: fits.Header) -> Beam | None:
    """The beam from BMAJ/BMIN/BPA (degrees; BPA 0 when absent) or from an AIPS HISTORY card."""
    bmaj, bmin = _float(header.get("BMAJ")), _float(header.get("BMIN"))
    if bmaj is not None and bmin is not None:
        bpa = _float(header.get("BPA"))
        return _valid_beam(bmaj, bmin, bpa or 0.0)
    for card in reversed(header.get("HISTORY", [])):
        m = _AIPS_BEAM.search(str(card))
        if m:
            values = [_float(v.replace("D", "E").replace("d", "e")) for v in m.groups()]
            if None not in values:
                return _valid_beam(*values)  # type: ignore[arg-type]
    return None


def beam_for(header: fits.Header, options: dict[str, Any]) -> Beam:
    """The beam to use: bmaj/bmin/bpa options (arcsec, arcsec, deg) override the header."""
    if options.get("bmaj") is not None and options.get("bmin") is not None:
        beam = _valid_beam(options["bmaj"] / 3600.0, options["bmin"] / 3600.0,
                           float(options.get("bpa") or 0.0))
        if beam is None:
            raise UsageError("The beam given in bmaj/bmin must be positive.")
        return beam
    beam = header_beam(header)
    if beam is None:
        raise UsageError("The image header has no restoring beam (BMAJ/BMIN/BPA) and no beam "
                         "was given: set the options bmaj and bmin (FWHM, arcsec) and optionally "
                         "bpa (degrees).")
    return beam


def frequency_for(header: fits.Header, options: dict[str, Any]) -> float | None:
    """Observing frequency in Hz: the frequency option, else the FREQ axis at the image plane,
    else RESTFRQ/RESTFREQ/FREQ keywords; None when nothing gives it."""
    if options.get("frequency") is not None:
        return float(options["frequency"])
    full = _wcs(header)
    spec = full.wcs.spec
    if spec >= 0 and str(full.wcs.ctype[spec]).upper().startswith("FREQ"):
        pix = np.zeros((1, full.naxis))
        try:
            value = float(full.all_pix2world(pix, 0)[0][spec])  # wcslib gives SI units: Hz
        except Exception:  # noqa: BLE001 - fall back to the keywords below
            value = float("nan")
        if math.isfinite(value) and value > 0:
            return value
    for key in ("RESTFRQ", "RESTFREQ", "FREQ"):
        keyword = _float(header.get(key))
        if keyword is not None and keyword > 0:
            return keyword
    return None


def beam_pixels(info: ImageInfo, beam: Beam) -> tuple[float, float]:
    """Beam FWHM axes in pixels (major, minor), using the mean pixel size."""
    scale = math.sqrt(info.pixel_scale[0] * info.pixel_scale[1])
    return beam.bmaj / scale, beam.bmin / scale


def beam_area_pixels(info: ImageInfo, beam: Beam) -> float:
    """Area of the Gaussian beam in pixels: converts a sum of Jy/beam pixels into Jy."""
    bmaj_pix, bmin_pix = beam_pixels(info, beam)
    return BEAM_AREA_FACTOR * bmaj_pix * bmin_pix


def sky_position_angle(wcs: WCS, x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Sky position angle (deg East of North, in [0, 180)) of axes drawn at pixel (x, y) with
    angle theta (radians, counter-clockwise from +x): valid for any orientation of the WCS."""
    ra0, dec0 = wcs.all_pix2world(x, y, 0)
    ra1, dec1 = wcs.all_pix2world(x + np.cos(theta), y + np.sin(theta), 0)
    d0, d1 = np.radians(dec0), np.radians(dec1)
    dra = np.radians(ra1 - ra0)
    pa = np.degrees(np.arctan2(np.sin(dra) * np.cos(d1),
                               np.cos(d0) * np.sin(d1) - np.sin(d0) * np.cos(d1) * np.cos(dra)))
    return np.mod(pa, 180.0)


def _wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            return WCS(header)
        except Exception as exc:  # noqa: BLE001 - astropy raises many types for bad headers
            raise UsageError(f"The image WCS is invalid ({exc}).") from exc


def _valid_beam(bmaj: float, bmin: float, bpa: float) -> Beam | None:
    if not all(math.isfinite(v) for v in (bmaj, bmin, bpa)) or min(bmaj, bmin) <= 0:
        return None
    if bmaj < bmin:  # axes swapped in the header: the major axis is perpendicular to BPA
        bmaj, bmin, bpa = bmin, bmaj, bpa + 90.0
    return Beam(bmaj=float(bmaj), bmin=float(bmin), bpa=float(bpa))


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def beam_kernel(info: ImageInfo, beam: Beam) -> np.ndarray:
    """The beam as an image (peak 1, odd side of about 6 sigma), oriented with the WCS: the
    major axis points at BPA East of North whatever the pixel grid's orientation."""
    ny, nx = info.shape
    x0, y0 = nx / 2.0, ny / 2.0
    ra0, dec0 = info.wcs.all_pix2world(x0, y0, 0)
    step = 10 * max(info.pixel_scale)  # degrees: a few pixels, small enough to be linear
    xn, yn = info.wcs.all_world2pix(ra0, dec0 + step, 0)
    xe, ye = info.wcs.all_world2pix(ra0 + step / math.cos(math.radians(float(dec0))), dec0, 0)
    north = np.array([xn - x0, yn - y0], dtype=float)
    east = np.array([xe - x0, ye - y0], dtype=float)
    north /= np.hypot(*north)
    east /= np.hypot(*east)
    pa = math.radians(beam.bpa)
    major = math.cos(pa) * north + math.sin(pa) * east
    minor = np.array([-major[1], major[0]])
    smaj, smin = (p * FWHM_TO_SIGMA for p in beam_pixels(info, beam))
    half = int(math.ceil(3 * smaj))
    offs = np.arange(-half, half + 1, dtype=float)
    dx, dy = offs[np.newaxis, :], offs[:, np.newaxis]
    a = dx * major[0] + dy * major[1]
    b = dx * minor[0] + dy * minor[1]
    return np.exp(-0.5 * ((a / smaj) ** 2 + (b / smin) ** 2))
