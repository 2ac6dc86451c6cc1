"""preview.png: the image with a percentile stretch and the sources drawn as ellipses.

Huge images are decimated while they are read (every s-th pixel of every s-th row, straight from
the memory-mapped file), so memory stays bounded by the preview, never the image: an image of
N x N pixels costs about (N / s)^2 floats with N / s <= MAX_PIXELS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless, whatever MPLBACKEND says

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.visualization import AsinhStretch, ImageNormalize  # noqa: E402
from astropy.wcs import WCS  # noqa: E402
from matplotlib.collections import EllipseCollection  # noqa: E402

from .values import finite  # noqa: E402

MAX_PIXELS = 1600
# Radio images are mostly noise with a few bright sources: clip at these percentiles and use an
# asinh stretch, so the noise stays dark grey and faint sources still show.
LOW_PERCENTILE, HIGH_PERCENTILE = 5.0, 99.9
MIN_MARKER = 12.0  # preview pixels: the smallest major axis drawn, so every source stays visible


def decimation_step(shape: Sequence[int], max_pixels: int = MAX_PIXELS) -> int:
    return max(1, math.ceil(max(shape[-1], shape[-2]) / max_pixels))


def read_decimated(path: Path, hdu_index: int, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, int, fits.Header]:
    """(2-D float32 image, step, header): the first plane of the image, every step-th pixel."""
    with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
        hdu = hdul[hdu_index]
        header = hdu.header.copy()
        shape = hdu.shape
        step = decimation_step(shape, max_pixels)
        lead = (0,) * (len(shape) - 2)  # first plane of the frequency / Stokes axes
        rows = range(0, shape[-2], step)
        out = np.empty((len(rows), len(range(0, shape[-1], step))), dtype=np.float32)
        if isinstance(hdu, fits.CompImageHDU):
            source = hdu.section  # decompresses only the tiles each row needs; already scaled
            for i, y in enumerate(rows):
                out[i] = source[lead + (y, slice(None, None, None))][::step]
            return out, step, header
        raw = hdu.data  # the raw memory-mapped array (do_not_scale_image_data)
        for i, y in enumerate(rows):
            out[i] = raw[lead + (y,)][::step]
        blank = header.get("BLANK") if raw.dtype.kind in "iu" else None
    if blank is not None:
        out[out == blank] = np.nan
    bscale, bzero = float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0))
    if bscale != 1.0 or bzero != 0.0:
        out = out * np.float32(bscale) + np.float32(bzero)
    return out, step, header


def _limits(image: np.ndarray) -> tuple[float, float]:
    finite_px = image[np.isfinite(image)]
    if finite_px.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite_px, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if not high > low:
        low, high = float(finite_px.min()), float(finite_px.max())
    return float(low), float(high) if high > low else float(low) + 1.0


def _sky_to_pixel_geometry(header: fits.Header) -> tuple[float, np.ndarray | None]:
    """(arcsec per pixel, matrix from (east, north) offsets to pixel offsets), or (nan, None)
    when the header has no usable celestial WCS."""
    try:
        wcs = WCS(header).celestial
        matrix = wcs.pixel_scale_matrix  # pixel offsets -> intermediate world (deg), x = east
        inverse = np.linalg.inv(matrix)
        scale = float(np.sqrt(abs(np.linalg.det(matrix)))) * 3600.0
        return scale, inverse
    except Exception:  # noqa: BLE001 - no WCS: draw circles in pixels only
        return float("nan"), None


def _shapes(rows: Sequence[dict[str, Any]], header: fits.Header, step: int,
            default_radius_pix: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """offsets (n, 2), widths, heights, angles (deg, counter-clockwise from +x) in preview pixels."""
    arcsec_per_pix, inverse = _sky_to_pixel_geometry(header)
    offsets, widths, heights, angles = [], [], [], []
    for row in rows:
        x, y = finite(row.get("x")), finite(row.get("y"))
        if x is None or y is None:
            continue
        major, minor, pa = finite(row.get("major")), finite(row.get("minor")), finite(row.get("pa"))
        if major and minor and inverse is not None and math.isfinite(arcsec_per_pix):
            theta = math.radians(pa or 0.0)
            direction = inverse @ np.array([math.sin(theta), math.cos(theta)])  # PA: North through East
            angle = math.degrees(math.atan2(direction[1], direction[0]))
            width, height = major / arcsec_per_pix, minor / arcsec_per_pix
        else:
            angle, width, height = 0.0, 2 * default_radius_pix, 2 * default_radius_pix
        # Enlarge small shapes to stay visible, keeping their axis ratio and orientation.
        grow = max(1.0, MIN_MARKER / max(width / step, 1e-9))
        offsets.append((x / step, y / step))
        widths.append(width / step * grow)
        heights.append(height / step * grow)
        angles.append(angle)
    return (np.array(offsets, dtype=float).reshape(-1, 2), np.array(widths), np.array(heights),
            np.array(angles))


def write_preview(image_path: Path, hdu_index: int, rows: Sequence[dict[str, Any]], path: Path, *,
                  max_pixels: int = MAX_PIXELS, default_radius_pix: float = 3.0) -> Path:
    image, step, header = read_decimated(image_path, hdu_index, max_pixels)
    low, high = _limits(image)
    ny, nx = image.shape
    dpi = 100
    fig = plt.figure(figsize=(nx / dpi, ny / dpi), dpi=dpi)
    try:
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_axis_off()
        norm = ImageNormalize(vmin=low, vmax=high, stretch=AsinhStretch(0.1), clip=True)
        ax.imshow(image, origin="lower", cmap="gray", norm=norm, interpolation="nearest")
        offsets, widths, heights, angles = _shapes(rows, header, step, default_radius_pix)
        if len(offsets):
            ax.add_collection(EllipseCollection(widths, heights, angles, units="xy", offsets=offsets,
                                                offset_transform=ax.transData, facecolors="none",
                                                edgecolors="lime", linewidths=0.8))
        ax.set_xlim(-0.5, nx - 0.5)
        ax.set_ylim(-0.5, ny - 0.5)
        fig.savefig(path, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path
