"""preview.png: the image with a percentile stretch and the sources drawn as ellipses.

An image is reduced while it is read: each preview pixel is the mean of a step x step block of
image pixels (NaN and BLANK pixels left out), read a band of rows at a time from the
memory-mapped file, so memory stays bounded by the preview plus one band, never the image, and
the preview is at most MAX_PIXELS on its long side. Averaging (not picking every step-th pixel)
keeps faint extended emission visible and the noise honest at the reduced scale.

The stretch is computed with numpy and the marks drawn with Pillow (a polygon per ellipse), so
drawing needs neither pyplot nor astropy.visualization: the runner imports little to draw it,
and the pixels go to the PNG 1:1, with no resampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from .values import finite

MAX_PIXELS = 2048
# Radio images are mostly noise with a few bright sources: clip at these percentiles and use an
# asinh stretch, so the noise stays dark grey and faint sources still show.
LOW_PERCENTILE, HIGH_PERCENTILE = 5.0, 99.9
ASINH_A = 0.1  # the asinh stretch's softening: linear below about a, logarithmic above
MIN_MARKER = 12.0  # preview pixels: the smallest major axis drawn, so every source stays visible
BAND_PIXELS = 4 * 1024 * 1024  # image pixels read per band (about 16 MiB of float32)
MARK_COLOUR, MARK_WIDTH = (0, 255, 0), 1  # lime rings, one preview pixel wide
# An 8-bit palette PNG: GREYS + 1 grey levels and the marks' colour, a third of the bytes of RGB
# to compress (the encoding was most of the preview's time).
GREYS = 254
MARK_INDEX = GREYS + 1
PALETTE = [round(i * 255 / GREYS) for i in range(GREYS + 1) for _ in range(3)] + list(MARK_COLOUR)
ELLIPSE_POINTS = 48  # vertices of each drawn ellipse: smooth at the sizes a preview shows
PNG_COMPRESS_LEVEL = 1  # zlib level: noise hardly compresses, and level 6 costs several times the time


def reduction_step(shape: Sequence[int], max_pixels: int = MAX_PIXELS) -> int:
    """The block size that brings the long side of the image within `max_pixels`."""
    return max(1, math.ceil(max(shape[-1], shape[-2]) / max_pixels))


def _block_mean(band: np.ndarray, step: int) -> np.ndarray:
    """Mean of each step x step block of `band` (rows a multiple of step, except at the edge),
    ignoring non-finite pixels; NaN where a block has none."""
    rows, cols = band.shape
    out_rows, out_cols = math.ceil(rows / step), math.ceil(cols / step)
    padded = np.full((out_rows * step, out_cols * step), np.nan, dtype=np.float32)
    padded[:rows, :cols] = band
    blocks = padded.reshape(out_rows, step, out_cols, step)
    good = np.isfinite(blocks)
    counts = good.sum(axis=(1, 3))
    sums = np.where(good, blocks, np.float32(0)).sum(axis=(1, 3), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).astype(np.float32)


def read_reduced(path: Path, hdu_index: int, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, int, fits.Header]:
    """(2-D float32 image, step, header): the first plane of the image, block-averaged by step."""
    with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
        hdu = hdul[hdu_index]
        header = hdu.header.copy()
        shape = hdu.shape
        step = reduction_step(shape, max_pixels)
        lead = (0,) * (len(shape) - 2)  # first plane of the frequency / Stokes axes
        ny, nx = shape[-2], shape[-1]
        compressed = isinstance(hdu, fits.CompImageHDU)
        # section decompresses only the tiles a band needs and returns scaled values; a plain
        # HDU gives the raw memory-mapped array (do_not_scale_image_data), scaled per band here.
        source = hdu.section if compressed else hdu.data
        blank = None if compressed or source.dtype.kind not in "iu" else header.get("BLANK")
        bscale, bzero = float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0))
        scaled = not compressed and (bscale != 1.0 or bzero != 0.0)
        band_rows = step * max(1, BAND_PIXELS // max(1, nx * step))
        out = []
        for y0 in range(0, ny, band_rows):
            raw = np.asarray(source[lead + (slice(y0, min(ny, y0 + band_rows)), slice(None))])
            band = raw.astype(np.float32)
            if blank is not None:
                band[raw == blank] = np.nan
            if scaled:
                band = band * np.float32(bscale) + np.float32(bzero)
            out.append(_block_mean(band, step))
    return np.concatenate(out, axis=0), step, header


def _limits(image: np.ndarray) -> tuple[float, float]:
    finite_px = image[np.isfinite(image)]
    if finite_px.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite_px, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if not high > low:
        low, high = float(finite_px.min()), float(finite_px.max())
    return float(low), float(high) if high > low else float(low) + 1.0


def stretch(image: np.ndarray, low: float, high: float, a: float = ASINH_A) -> np.ndarray:
    """Values in [0, 1]: clipped to [low, high], then asinh-stretched (NaN stays NaN)."""
    scaled = np.clip((image - np.float32(low)) / np.float32(high - low), 0.0, 1.0)
    return (np.arcsinh(scaled / a) / math.asinh(1.0 / a)).astype(np.float32)


def _sky_to_pixel_geometry(header: fits.Header) -> tuple[float, np.ndarray | None]:
    """(arcsec per pixel, matrix from (east, north) offsets to pixel offsets), or (nan, None)
    when the header has no usable celestial WCS."""
    try:
        from astropy.wcs import WCS

        wcs = WCS(header).celestial
        matrix = wcs.pixel_scale_matrix  # pixel offsets -> intermediate world (deg), x = east
        inverse = np.linalg.inv(matrix)
        scale = float(np.sqrt(abs(np.linalg.det(matrix)))) * 3600.0
        return scale, inverse
    except Exception:  # noqa: BLE001 - no WCS: draw circles in pixels only
        return float("nan"), None


def to_preview(value: float, step: int) -> float:
    """An image pixel coordinate (0-based) in preview pixels: preview pixel j is the mean of
    image pixels j*step .. j*step + step - 1, centred on j*step + (step - 1) / 2."""
    return (value - (step - 1) / 2.0) / step


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
        offsets.append((to_preview(x, step), to_preview(y, step)))
        widths.append(width / step * grow)
        heights.append(height / step * grow)
        angles.append(angle)
    return (np.array(offsets, dtype=float).reshape(-1, 2), np.array(widths), np.array(heights),
            np.array(angles))


def ellipse_outline(x: float, y: float, width: float, height: float, angle_deg: float,
                    points: int = ELLIPSE_POINTS) -> np.ndarray:
    """(points, 2) vertices of the ellipse centred on (x, y), axes width x height, rotated by
    angle_deg counter-clockwise from +x."""
    t = np.linspace(0.0, 2.0 * math.pi, points, endpoint=False)
    a = math.radians(angle_deg)
    ex, ey = width / 2.0 * np.cos(t), height / 2.0 * np.sin(t)
    return np.column_stack((x + ex * math.cos(a) - ey * math.sin(a), y + ex * math.sin(a) + ey * math.cos(a)))


@dataclass(frozen=True)
class Prepared:
    """The preview's pixels before any mark: grey levels (top row first) and how they were made."""

    grey: np.ndarray  # uint8 (rows, cols) palette indexes 0..GREYS, row 0 = the top of the sky
    step: int
    header: fits.Header


def prepare(image_path: Path, hdu_index: int, max_pixels: int = MAX_PIXELS) -> Prepared:
    """Everything that needs the image but not the catalogue: the runner does it while the
    finder runs."""
    image, step, header = read_reduced(image_path, hdu_index, max_pixels)
    low, high = _limits(image)
    # Row 0 of the image is the bottom (FITS): flip so the PNG reads top-down like the sky.
    grey = np.nan_to_num(stretch(image, low, high)[::-1] * GREYS, nan=0.0).astype(np.uint8)
    return Prepared(grey, step, header)


def draw(prepared: Prepared, rows: Sequence[dict[str, Any]], path: Path, *, default_radius_pix: float = 3.0) -> Path:
    """The marks of `rows` on the prepared pixels, written to `path` as PNG."""
    from PIL import Image, ImageDraw

    ny, nx = prepared.grey.shape
    # The grey levels are palette indexes: greys, then the marks' colour.
    canvas = Image.frombytes("P", (nx, ny), np.ascontiguousarray(prepared.grey).tobytes())
    canvas.putpalette(PALETTE)
    pen = ImageDraw.Draw(canvas)
    offsets, widths, heights, angles = _shapes(rows, prepared.header, prepared.step, default_radius_pix)
    for (x, y), width, height, angle in zip(offsets, widths, heights, angles, strict=True):
        outline = ellipse_outline(x, y, width, height, angle)
        outline[:, 1] = (ny - 1) - outline[:, 1]  # y up -> PNG rows down
        pen.polygon([tuple(p) for p in outline.tolist()], outline=MARK_INDEX, width=MARK_WIDTH)
    canvas.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return path


def write_preview(image_path: Path, hdu_index: int, rows: Sequence[dict[str, Any]], path: Path, *,
                  max_pixels: int = MAX_PIXELS, default_radius_pix: float = 3.0) -> Path:
    return draw(prepare(image_path, hdu_index, max_pixels), rows, path, default_radius_pix=default_radius_pix)
