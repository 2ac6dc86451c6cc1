"""Synthetic radio images with a known truth catalogue, and a matcher to score finders against it.

`make_image` writes a FITS image the way a radio interferometer pipeline would: SIN projection,
Jy/beam pixels, the restoring beam in BMAJ/BMIN/BPA (degrees), a frequency axis, and noise that is
correlated on the scale of the beam (white noise convolved with the beam). Point sources are
beam-shaped Gaussians at well separated positions, with SNRs spread evenly in log between
`snr_range`, so every test knows exactly what a finder should recover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy.spatial import cKDTree

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))

DEFAULT_RMS = 1e-4  # Jy/beam: 100 uJy/beam, a typical continuum survey noise
DEFAULT_PIXEL_ARCSEC = 2.0
DEFAULT_FREQ_HZ = 1.4e9
DEFAULT_CENTRE = (150.0, -30.0)  # RA, Dec (deg)


def _beam_axes(beam_pix: tuple[float, float, float]) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Sigmas (pix) along the major/minor axes and their unit vectors in (x, y) pixel space.

    BPA is measured from North through East; with RA increasing to the left (CDELT1 < 0) and North
    up, East is -x, so the major axis points along (-sin PA, cos PA)."""
    bmaj, bmin, bpa = beam_pix
    theta = math.radians(bpa)
    major = np.array([-math.sin(theta), math.cos(theta)])
    minor = np.array([math.cos(theta), math.sin(theta)])
    return bmaj * FWHM_TO_SIGMA, bmin * FWHM_TO_SIGMA, major, minor


def _gaussian(dx: np.ndarray, dy: np.ndarray, beam_pix: tuple[float, float, float]) -> np.ndarray:
    """The beam, peak 1, evaluated at pixel offsets (dx, dy) from its centre."""
    smaj, smin, major, minor = _beam_axes(beam_pix)
    a = dx * major[0] + dy * major[1]
    b = dx * minor[0] + dy * minor[1]
    return np.exp(-0.5 * ((a / smaj) ** 2 + (b / smin) ** 2))


def _correlated_noise(rng: np.random.Generator, size: int, beam_pix: tuple[float, float, float],
                      rms: float) -> np.ndarray:
    """White noise convolved with the beam (FFT, periodic), scaled so its expected rms is `rms`."""
    white = rng.standard_normal((size, size))
    offsets = np.fft.fftfreq(size) * size  # 0, 1, ..., -1: the kernel centred on pixel (0, 0)
    dx = offsets[np.newaxis, :]
    dy = offsets[:, np.newaxis]
    kernel = _gaussian(dx, dy, beam_pix)
    conv = np.fft.irfft2(np.fft.rfft2(white) * np.fft.rfft2(kernel), s=white.shape)
    # Convolving unit white noise with k gives variance sum(k^2): divide it out exactly.
    return conv * (rms / math.sqrt(float(np.sum(kernel ** 2))))


def _positions(rng: np.random.Generator, size: int, n: int, min_sep: float, margin: float) -> np.ndarray:
    """n random positions at least `min_sep` apart and `margin` away from the edges."""
    lo, hi = margin, size - 1 - margin
    if hi <= lo:
        raise ValueError(f"image of {size} pixels too small for an edge margin of {margin}")
    chosen = np.empty((0, 2))
    attempts = 0
    while len(chosen) < n:
        attempts += 1
        if attempts > 200 * n + 1000:
            raise ValueError(f"cannot place {n} sources {min_sep} pixels apart in a {size}-pixel image")
        cand = rng.uniform(lo, hi, size=2)
        if len(chosen) and np.min(np.hypot(*(chosen - cand).T)) < min_sep:
            continue
        chosen = np.vstack([chosen, cand])
    return chosen


def _header(size: int, beam_pix: tuple[float, float, float], pixel_arcsec: float, header_beam: bool,
            header_freq: bool) -> fits.Header:
    cdelt = pixel_arcsec / 3600.0
    hdr = fits.Header()
    axes: list[tuple[str, float, float, float, str]] = [
        ("RA---SIN", DEFAULT_CENTRE[0], size / 2 + 1, -cdelt, "deg"),
        ("DEC--SIN", DEFAULT_CENTRE[1], size / 2 + 1, cdelt, "deg"),
    ]
    if header_freq:
        # The usual radio layout: degenerate FREQ and STOKES axes after the celestial ones.
        axes += [("FREQ", DEFAULT_FREQ_HZ, 1.0, 1e6, "Hz"), ("STOKES", 1.0, 1.0, 1.0, "")]
    for i, (ctype, crval, crpix, cdelt_i, cunit) in enumerate(axes, start=1):
        hdr[f"CTYPE{i}"] = ctype
        hdr[f"CRVAL{i}"] = crval
        hdr[f"CRPIX{i}"] = crpix
        hdr[f"CDELT{i}"] = cdelt_i
        if cunit:
            hdr[f"CUNIT{i}"] = cunit
    hdr["RADESYS"] = "FK5"
    hdr["EQUINOX"] = 2000.0
    hdr["BUNIT"] = "JY/BEAM"
    if header_freq:
        hdr["RESTFRQ"] = DEFAULT_FREQ_HZ
    if header_beam:
        hdr["BMAJ"] = beam_pix[0] * cdelt
        hdr["BMIN"] = beam_pix[1] * cdelt
        hdr["BPA"] = float(beam_pix[2])
    hdr["OBJECT"] = "caesar-faas synthetic field"
    return hdr


def make_image(path: str, *, size: int = 2048, n_sources: int = 300,
               snr_range: tuple[float, float] = (5.0, 200.0), seed: int = 0,
               beam_pix: tuple[float, float, float] = (4.0, 4.0, 0.0), header_beam: bool = True,
               header_freq: bool = True, rms: float = DEFAULT_RMS,
               pixel_arcsec: float = DEFAULT_PIXEL_ARCSEC, min_sep_beams: float = 8.0,
               margin_beams: float = 8.0) -> list[dict[str, float]]:
    """Write a synthetic image to `path` and return its truth catalogue.

    beam_pix: (BMAJ, BMIN) FWHM in pixels and BPA in degrees. With header_freq the data are 4-D
    (STOKES, FREQ, DEC, RA) with a FREQ axis and RESTFRQ; without it a plain 2-D image with no
    frequency anywhere. Truth rows: x, y (0-based pixels), ra, dec (deg), peak_flux and int_flux
    (Jy/beam and Jy: equal for a point source), snr; sorted by descending SNR.
    """
    rng = np.random.default_rng(seed)
    image = _correlated_noise(rng, size, beam_pix, rms)
    pos = _positions(rng, size, n_sources, min_sep_beams * beam_pix[0], margin_beams * beam_pix[0])
    snrs = rng.permutation(np.geomspace(snr_range[0], snr_range[1], n_sources))
    half = int(math.ceil(6 * beam_pix[0] * FWHM_TO_SIGMA)) + 1
    for (x0, y0), snr in zip(pos, snrs, strict=True):
        ix, iy = int(round(x0)), int(round(y0))
        xs = np.arange(max(ix - half, 0), min(ix + half + 1, size))
        ys = np.arange(max(iy - half, 0), min(iy + half + 1, size))
        stamp = _gaussian(xs[np.newaxis, :] - x0, ys[:, np.newaxis] - y0, beam_pix)
        image[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] += snr * rms * stamp

    hdr = _header(size, beam_pix, pixel_arcsec, header_beam, header_freq)
    data = image.astype(np.float32)
    if header_freq:
        data = data[np.newaxis, np.newaxis, :, :]
    fits.PrimaryHDU(data=data, header=hdr).writeto(path, overwrite=True)

    ra, dec = WCS(hdr).celestial.all_pix2world(pos[:, 0], pos[:, 1], 0)
    truth = [
        {"x": float(x), "y": float(y), "ra": float(r), "dec": float(d),
         "peak_flux": float(s * rms), "int_flux": float(s * rms), "snr": float(s)}
        for (x, y), r, d, s in zip(pos, ra, dec, snrs, strict=True)
    ]
    truth.sort(key=lambda row: -row["snr"])
    return truth


@dataclass
class Match:
    """One-to-one match of a catalogue against the truth.

    recovered: (truth index, catalogue index, distance in pixels); missed: truth indices with no
    catalogue row within the radius; spurious: catalogue indices matching no truth source (a second
    detection of an already matched source counts as spurious: the finder split it)."""

    recovered: list[tuple[int, int, float]] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    spurious: list[int] = field(default_factory=list)
    n_catalog: int = 0

    def recovered_fraction(self, truth: list[dict[str, Any]], min_snr: float = 0.0) -> float:
        wanted = {i for i, row in enumerate(truth) if row["snr"] >= min_snr}
        if not wanted:
            return 1.0
        found = {t for t, _, _ in self.recovered if t in wanted}
        return len(found) / len(wanted)

    def missed_above(self, truth: list[dict[str, Any]], min_snr: float) -> list[dict[str, Any]]:
        return [truth[i] for i in self.missed if truth[i]["snr"] >= min_snr]

    @property
    def spurious_fraction(self) -> float:
        return len(self.spurious) / self.n_catalog if self.n_catalog else 0.0


def match(catalog: list[dict[str, Any]], truth: list[dict[str, Any]], radius_pix: float) -> Match:
    """Greedy nearest-first one-to-one matching on 0-based pixel positions (x, y)."""
    result = Match(n_catalog=len(catalog))
    if not catalog or not truth:
        result.missed = list(range(len(truth)))
        result.spurious = list(range(len(catalog)))
        return result
    cat_xy = np.array([[row["x"], row["y"]] for row in catalog], dtype=float)
    tru_xy = np.array([[row["x"], row["y"]] for row in truth], dtype=float)
    tree = cKDTree(cat_xy)
    candidates: list[tuple[float, int, int]] = []
    for t, neighbours in enumerate(tree.query_ball_point(tru_xy, r=radius_pix)):
        for c in neighbours:
            candidates.append((float(np.hypot(*(cat_xy[c] - tru_xy[t]))), t, c))
    used_t: set[int] = set()
    used_c: set[int] = set()
    for dist, t, c in sorted(candidates):
        if t in used_t or c in used_c:
            continue
        used_t.add(t)
        used_c.add(c)
        result.recovered.append((t, c, dist))
    result.missed = [t for t in range(len(truth)) if t not in used_t]
    result.spurious = [c for c in range(len(catalog)) if c not in used_c]
    return result
