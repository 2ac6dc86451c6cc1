"""preview.png: the image as an astronomer expects to see it — WCS axes with RA/Dec labels and a
coordinate grid, a colour bar in the image's unit, a robust asinh stretch, the sources drawn as
their fitted ellipses, and a title naming the file and the app — at most 2048 px on its long side.

Cost stays flat with the image size: the image is block-averaged while it is read (f x f pixels
into one, f chosen so the panel is at most MAX_PANEL pixels), from the memory-mapped file a band
of f rows at a time, so memory is bounded by the preview, not the image. Block averages, unlike
every f-th pixel, keep faint sources and do not alias the noise. Drawing uses matplotlib's Agg
canvas directly (no pyplot: no global figure state, no backend selection at import).

Two steps, so the runner does most of it while the finder runs (runner/background.py):
`prepare` needs only the image (read, binned, stretched, axes, grid and colour bar drawn and
composited over the pixels); `draw` adds what needs the catalogue (the marks and the title), on
a plain transparent layer with the same panel geometry, which costs a fraction of the WCS axes.
"""

from __future__ import annotations

import math
import struct
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.visualization import AsinhStretch, ImageNormalize
from astropy.wcs import WCS, FITSFixedWarning
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import EllipseCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .frames import sky_frame
from .values import finite

MAX_SIDE = 2048  # the PNG's long side, whatever the image
MAX_PANEL = 1280  # the image panel's long side (the rest holds labels and the colour bar); PNG
# encoding is the largest cost and grows with the pixels: 1280 keeps a 4096^2 preview near 0.5 s
MIN_PANEL = 640  # small images are shown larger (pixels repeated), so labels stay readable
DPI = 100
# Margins around the panel in pixels: Dec labels left, RA labels below, the title above, the
# colour bar and its label on the right.
LEFT, BOTTOM, TOP, RIGHT = 110, 80, 50, 150
# Radio images are mostly noise with a few bright sources: clip at these percentiles and use an
# asinh stretch, so the noise stays dark grey and faint sources still show.
LOW_PERCENTILE, HIGH_PERCENTILE = 5.0, 99.9
BAND_PIXELS = 8 * 1024 * 1024  # image pixels read and averaged at once (32 MiB of float32)
BLANK_RGB = (20, 30, 60)  # blanked (NaN) pixels: dark blue, not black, so they are not read as 0
MIN_MARKER = 10.0  # panel pixels: the smallest major axis drawn, so every source stays visible
AXIS_NAMES = {"ICRS": ("Right ascension", "Declination"), "FK5": ("Right ascension", "Declination"),
              "FK4": ("Right ascension", "Declination"), "galactic": ("Galactic longitude", "Galactic latitude"),
              "ecl_FK5": ("Ecliptic longitude", "Ecliptic latitude")}


def block_factor(shape: Sequence[int], max_pixels: int = MAX_PANEL) -> int:
    return max(1, math.ceil(max(shape[-1], shape[-2]) / max_pixels))


def read_binned(path: Path, hdu_index: int, max_pixels: int = MAX_PANEL) -> tuple[np.ndarray, int, fits.Header]:
    """(2-D float32 image of f x f block means, f, header) of the first plane; NaN (blanked)
    pixels are left out of each mean, a block of NaN only stays NaN."""
    with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
        hdu = hdul[hdu_index]
        header = hdu.header.copy()
        shape = hdu.shape
        f = block_factor(shape, max_pixels)
        ny, nx = shape[-2], shape[-1]
        out_ny, out_nx = -(-ny // f), -(-nx // f)
        lead = (0,) * (len(shape) - 2)  # first plane of the frequency / Stokes axes
        compressed = isinstance(hdu, fits.CompImageHDU)
        source = hdu.section if compressed else hdu.data  # section: only the tiles each band needs
        scale = not compressed  # CompImageHDU.section is already scaled
        blank = header.get("BLANK") if scale and source.dtype.kind in "iu" else None
        bscale, bzero = float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0))
        image = np.empty((out_ny, out_nx), dtype=np.float32)
        band_rows = max(1, BAND_PIXELS // (f * out_nx * f))  # binned rows per read: bounded memory
        for first in range(0, out_ny, band_rows):
            last = min(out_ny, first + band_rows)
            raw = source[lead + (slice(first * f, min(ny, last * f)), slice(None))]
            band = np.full(((last - first) * f, out_nx * f), np.nan, dtype=np.float32)
            band[: raw.shape[0], :nx] = raw  # converts the big-endian FITS data once
            if blank is not None:
                band[band == blank] = np.nan
            if scale and (bscale != 1.0 or bzero != 0.0):
                band = band * np.float32(bscale) + np.float32(bzero)
            if f == 1:
                image[first:last] = band
                continue
            image[first:last] = _block_mean(band, f)
    return image, f, header


def _block_sum(values: np.ndarray, f: int) -> np.ndarray:
    """Sums of the f x f blocks: f strided adds along the rows, then f down the columns (numpy
    reduces a short inner axis several times slower than it adds whole strided views)."""
    across = values[:, 0::f].copy()
    for k in range(1, f):
        across += values[:, k::f]
    down = across[0::f].copy()
    for k in range(1, f):
        down += across[k::f]
    return down


def _block_mean(band: np.ndarray, f: int) -> np.ndarray:
    """Means of the f x f blocks of band (its sides multiples of f), NaN left out. Most images
    have no NaN: then the counts are f * f and are not computed."""
    blank = np.isnan(band)
    if not blank.any():
        return _block_sum(band, f) / np.float32(f * f)
    sums = _block_sum(np.where(blank, np.float32(0), band), f)
    counts = _block_sum((~blank).astype(np.float32), f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def binned_wcs(header: fits.Header, f: int) -> WCS | None:
    """The celestial WCS of the f x f binned grid (None without a usable celestial WCS): the
    centre of binned pixel q (1-based) is original pixel (q - 0.5) f + 0.5."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header).celestial
        if wcs.naxis != 2 or not wcs.has_celestial:
            return None
        wcs.wcs.crpix = (np.asarray(wcs.wcs.crpix) - 0.5) / f + 0.5
        if wcs.wcs.has_cd():
            wcs.wcs.cd = np.asarray(wcs.wcs.cd) * f
        else:
            wcs.wcs.cdelt = np.asarray(wcs.wcs.cdelt) * f
        wcs.wcs.set()
        return wcs
    except Exception:  # noqa: BLE001 - no WCS: a plain pixel grid
        return None


def _limits(image: np.ndarray) -> tuple[float, float]:
    sample = image.ravel()[:: max(1, image.size // 250_000)]  # percentiles of 250k pixels are as good
    finite_px = sample[np.isfinite(sample)]
    if finite_px.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite_px, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if not high > low:
        low, high = float(finite_px.min()), float(finite_px.max())
    return float(low), float(high) if high > low else float(low) + 1.0


def _shapes(rows: Sequence[dict[str, Any]], wcs: WCS | None, f: int, zoom: float,
            default_radius_pix: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """offsets (n, 2) on the binned grid, widths, heights (binned pixels), angles (deg,
    counter-clockwise from +x)."""
    inverse = None
    if wcs is not None:
        matrix = wcs.pixel_scale_matrix  # binned pixel offsets -> intermediate world (deg), x = east
        inverse = np.linalg.inv(matrix)
        arcsec_per_pix = float(np.sqrt(abs(np.linalg.det(matrix)))) * 3600.0
    offsets, widths, heights, angles = [], [], [], []
    for row in rows:
        x, y = finite(row.get("x")), finite(row.get("y"))
        if x is None or y is None:
            continue
        major, minor, pa = finite(row.get("major")), finite(row.get("minor")), finite(row.get("pa"))
        if major and minor and major > 0 and minor > 0 and inverse is not None:
            theta = math.radians(pa or 0.0)
            direction = inverse @ np.array([math.sin(theta), math.cos(theta)])  # PA: North through East
            angle = math.degrees(math.atan2(direction[1], direction[0]))
            width, height = major / arcsec_per_pix, minor / arcsec_per_pix
        else:
            angle, width, height = 0.0, 2 * default_radius_pix / f, 2 * default_radius_pix / f
        # Enlarge small shapes to stay visible, keeping their axis ratio and orientation.
        grow = max(1.0, MIN_MARKER / zoom / max(width, 1e-9))
        offsets.append(((x + 0.5) / f - 0.5, (y + 0.5) / f - 0.5))
        widths.append(width * grow)
        heights.append(height * grow)
        angles.append(angle)
    return (np.array(offsets, dtype=float).reshape(-1, 2), np.array(widths), np.array(heights),
            np.array(angles))


def _unit(header: fits.Header) -> str:
    unit = str(header.get("BUNIT", "") or "").strip()
    return {"JY/BEAM": "Jy/beam", "JY/PIXEL": "Jy/pixel", "K": "K"}.get(unit.upper(), unit) or "pixel value"


def _rgb(image: np.ndarray, norm: ImageNormalize, zoom: int) -> np.ndarray:
    """The stretched image as RGB bytes through a 256-level grey table (blanks in dark blue),
    enlarged zoom x zoom by repetition: drawn as it is, with no resampling by matplotlib."""
    levels = np.asarray(norm(image).filled(0.0) if np.ma.isMaskedArray(norm(image)) else norm(image))
    index = np.clip(np.nan_to_num(levels, nan=0.0) * 255.0, 0, 255).astype(np.uint8)
    grey = np.arange(256, dtype=np.uint8)
    rgb = np.repeat(grey[index][..., np.newaxis], 3, axis=2)
    rgb[~np.isfinite(image)] = BLANK_RGB
    if zoom > 1:
        rgb = rgb.repeat(zoom, axis=0).repeat(zoom, axis=1)
    return rgb[::-1]  # row 0 at the bottom, as FITS and the axes have it


@dataclass(frozen=True)
class Prepared:
    """The preview without the catalogue: pixels, axes, grid and colour bar, composited."""

    base: np.ndarray  # (height, width, 3) uint8
    f: int  # image pixels per binned pixel, on each side
    zoom: int  # panel pixels per binned pixel
    shape: tuple[int, int]  # the binned image's (ny, nx)
    wcs: WCS | None  # of the binned grid
    name: str  # the image's file name: the title when none is given

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.base.shape[:2]
        return width, height

    def panel_rect(self) -> tuple[float, float, float, float]:
        width, height = self.size
        ny, nx = self.shape
        return (LEFT / width, BOTTOM / height, nx * self.zoom / width, ny * self.zoom / height)


def _figure(width: int, height: int) -> tuple[Figure, FigureCanvasAgg]:
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    fig.patch.set_alpha(0.0)  # transparent: composited over the pixels and white below
    return fig, canvas


def _limit_view(ax: Any, shape: tuple[int, int]) -> None:
    ny, nx = shape
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)


def prepare(image_path: Path, hdu_index: int, max_pixels: int = MAX_PANEL) -> Prepared:
    """Everything that needs the image but not the catalogue."""
    image, f, header = read_binned(image_path, hdu_index, min(max_pixels, MAX_PANEL))
    low, high = _limits(image)
    ny, nx = image.shape
    zoom = max(1, math.ceil(MIN_PANEL / max(nx, ny)))  # panel pixels per binned pixel
    panel_w, panel_h = nx * zoom, ny * zoom
    width, height = int(panel_w + LEFT + RIGHT), int(panel_h + BOTTOM + TOP)  # <= MAX_SIDE
    fig, canvas = _figure(width, height)
    norm = ImageNormalize(vmin=low, vmax=high, stretch=AsinhStretch(0.1), clip=True)
    rect = (LEFT / width, BOTTOM / height, panel_w / width, panel_h / height)
    wcs = binned_wcs(header, f)
    if wcs is not None:
        ax: Any = fig.add_axes(rect, projection=wcs)  # astropy WCSAxes (typed as plain Axes)
        system = sky_frame(header).system
        lon_name, lat_name = AXIS_NAMES.get(system, ("longitude", "latitude"))
        if lon_name == "Right ascension":
            # Plain h/m/s: the default superscripts need matplotlib's mathtext, whose parser
            # alone costs about 0.3 s to build in each new runner process.
            ax.coords[0].set_separator(("h", "m", "s"))
        ax.coords[0].set_axislabel(f"{lon_name} ({system})")
        ax.coords[1].set_axislabel(f"{lat_name} ({system})")
        ax.coords.grid(color="white", alpha=0.35, linestyle="solid", linewidth=0.6)
    else:
        ax = fig.add_axes(rect)
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
    ax.patch.set_visible(False)
    _limit_view(ax, (ny, nx))
    cax = fig.add_axes(((LEFT + panel_w + 20) / width, BOTTOM / height, 18 / width, panel_h / height))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap="gray"), cax=cax)
    # Ticks evenly spaced along the bar, not in value: under the asinh stretch the default ticks
    # crowd at the top and their labels overprint.
    bar.set_ticks([float(v) for v in np.atleast_1d(norm.inverse(np.linspace(0.0, 1.0, 7)))])
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:.3g}"))
    bar.set_label(_unit(header))
    canvas.draw()
    # matplotlib draws only the frame, coordinates, grid and texts; the pixels are put under
    # them here, one panel pixel each (its own image drawing resamples, 10x slower).
    base = np.full((height, width, 3), 255, dtype=np.uint8)
    base[TOP:TOP + panel_h, LEFT:LEFT + panel_w] = _rgb(image, norm, zoom)
    return Prepared(_over(np.asarray(canvas.buffer_rgba()), base), f, zoom, (ny, nx), wcs, image_path.name)


def draw(prepared: Prepared, rows: Sequence[dict[str, Any]], path: Path, *, title: str = "",
         default_radius_pix: float = 3.0) -> Path:
    """The marks of `rows` and the title over the prepared preview, written to `path` as PNG."""
    width, height = prepared.size
    fig, canvas = _figure(width, height)
    # A plain axes over the same panel with the same limits: the binned pixel grid maps to the
    # same panel pixels as under the WCS axes (whose frame and grid are already in the base).
    ax = fig.add_axes(prepared.panel_rect())
    ax.set_axis_off()
    _limit_view(ax, prepared.shape)
    offsets, widths, heights, angles = _shapes(rows, prepared.wcs, prepared.f, prepared.zoom, default_radius_pix)
    if len(offsets):
        ax.add_collection(EllipseCollection(widths, heights, angles, units="xy", offsets=offsets,
                                            offset_transform=ax.transData, facecolors="none",
                                            edgecolors="lime", linewidths=0.8))
    binning = f" (binned {prepared.f}x{prepared.f})" if prepared.f > 1 else ""
    fig.suptitle(f"{title or prepared.name}{binning}", y=1 - 12 / height, fontsize=12)
    canvas.draw()
    path.write_bytes(png_bytes(_over(np.asarray(canvas.buffer_rgba()), prepared.base)))
    return path


def png_bytes(rgb: np.ndarray) -> bytes:
    """An (h, w, 3) uint8 image as PNG: every row unfiltered, deflated at zlib's fastest level.
    Pillow tries all five PNG filters on every row (adaptive filtering) before deflating: 75 ms
    for a 1284 x 1154 preview, the largest cost of a short job's products; this takes 40 ms and
    the file is as small (the noise of a radio image does not predict from its neighbours)."""
    height, width, _ = rgb.shape
    scanlines = bytearray(height * (1 + 3 * width))  # each row: its filter type (0, None), its bytes
    np.frombuffer(scanlines, dtype=np.uint8).reshape(height, 1 + 3 * width)[:, 1:] = rgb.reshape(height, 3 * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines, 1)) + chunk(b"IEND", b"")


def write_preview(image_path: Path, hdu_index: int, rows: Sequence[dict[str, Any]], path: Path, *,
                  title: str = "", max_pixels: int = MAX_PANEL, default_radius_pix: float = 3.0) -> Path:
    return draw(prepare(image_path, hdu_index, max_pixels), rows, path, title=title,
                default_radius_pix=default_radius_pix)


def _over(layer: np.ndarray, base: np.ndarray) -> np.ndarray:
    """RGBA layer (straight alpha, as Agg hands it out) composited over an RGB base; RGB, not
    RGBA, is written: the encoding is a large part of the cost. Only the drawn pixels (a few
    percent: marks and title) are blended, in integers (255 * 255 + 127 fits in 16 bits)."""
    flat = layer.reshape(-1, 4)
    drawn = np.flatnonzero(flat[:, 3])
    out = base.copy()
    pixels = out.reshape(-1, 3)
    alpha = flat[drawn, 3:4].astype(np.uint16)
    pixels[drawn] = ((flat[drawn, :3] * alpha + pixels[drawn] * (255 - alpha) + 127) // 255).astype(np.uint8)
    return out
