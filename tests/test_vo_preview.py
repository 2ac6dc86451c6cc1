"""preview.png: WCS axes, colour bar, robust stretch, source marks, title; block-averaged so it
is at most 2048 px on its long side; drawn without pyplot."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.visualization import AsinhStretch, ImageNormalize
from astropy.wcs import WCS
from PIL import Image

from caesar_faas.catalog import preview
from tests.synth import make_image

ROOT = Path(__file__).resolve().parents[1]


def sky_header(ny: int, nx: int, **cards) -> fits.Header:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = [150.0, -30.0]
    wcs.wcs.crpix = [nx / 2 + 1, ny / 2 + 1]
    wcs.wcs.cdelt = [-2 / 3600, 2 / 3600]
    header = wcs.to_header()
    header.update({"BUNIT": "JY/BEAM", **cards})
    return header


def test_block_means_leave_blanks_out():
    data = np.arange(7 * 10, dtype=np.float32).reshape(7, 10)
    data[0, 0] = np.nan
    data[3:6, 3:6] = np.nan
    padded = np.full((9, 12), np.nan, dtype=np.float32)
    padded[:7, :10] = data
    got = preview._block_mean(padded, 3)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanmean(padded.reshape(3, 3, 4, 3), axis=(1, 3))
    np.testing.assert_allclose(got, want, equal_nan=True)
    assert np.isnan(got[1, 1])  # a block of blanks only stays blank


def test_the_binned_image_and_its_wcs_agree_with_the_original(tmp_path):
    ny, nx = 2100, 3300  # binned 3 x 3 (long side 3300 / 1280 -> 3)
    data = np.random.default_rng(1).standard_normal((ny, nx)).astype(np.float32)
    header = sky_header(ny, nx)
    path = tmp_path / "big.fits"
    fits.PrimaryHDU(data=data, header=header).writeto(path)
    image, f, _ = preview.read_binned(path, 0)
    assert f == 3 and image.shape == (700, 1100)
    np.testing.assert_allclose(image, data.reshape(700, 3, 1100, 3).mean(axis=(1, 3)), rtol=1e-5, atol=1e-6)
    binned = preview.binned_wcs(header, f)
    # the centre of binned pixel (i, j) is the centre of the original block 3i..3i+2, 3j..3j+2
    q = np.array([[0.0, 0.0], [10.0, 20.0], [1099.0, 699.0]])
    original = q * f + (f - 1) / 2
    np.testing.assert_allclose(binned.all_pix2world(q, 0), WCS(header).all_pix2world(original, 0), atol=1e-9)


def test_scaled_integer_images_are_read_in_physical_units(tmp_path):
    data = np.arange(64 * 64, dtype=np.int16).reshape(64, 64)
    hdu = fits.PrimaryHDU(data=data, header=sky_header(64, 64))
    hdu.header["BSCALE"], hdu.header["BZERO"] = 0.5, 10.0
    path = tmp_path / "scaled.fits"
    hdu.writeto(path)
    image, f, _ = preview.read_binned(path, 0)
    assert f == 1
    np.testing.assert_allclose(image, fits.getdata(path).astype(np.float32))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preview")
    image = folder / "field.fits"
    truth = make_image(str(image), size=300, n_sources=10, seed=8)
    rows = [{"x": t["x"], "y": t["y"], "major": 12.0, "minor": 10.0, "pa": 30.0} for t in truth]
    out = preview.write_preview(image, 0, rows, folder / "preview.png", title="field.fits · sep · 10 sources")
    return image, rows, np.asarray(Image.open(out).convert("RGB"))


def test_the_panel_shows_the_stretched_image_in_place(rendered):
    image, _, png = rendered
    data, f, header = preview.read_binned(image, 0)
    low, high = preview._limits(data)
    norm = ImageNormalize(vmin=low, vmax=high, stretch=AsinhStretch(0.1), clip=True)
    zoom = int(np.ceil(preview.MIN_PANEL / max(data.shape)))
    expected = preview._rgb(data, norm, zoom)
    panel = png[preview.TOP:preview.TOP + expected.shape[0], preview.LEFT:preview.LEFT + expected.shape[1]]
    # identical except under the grid lines, the marks and the frame drawn over it
    assert (panel == expected).all(axis=2).mean() > 0.8
    bright = np.unravel_index(np.nanargmax(data), data.shape)  # the brightest source, at the top of the stretch
    y = expected.shape[0] - 1 - (bright[0] * zoom + zoom // 2)  # PNG rows run downwards
    assert panel[y, bright[1] * zoom + zoom // 2].min() > 200


def test_axes_colour_bar_title_and_marks_are_drawn(rendered):
    image, rows, png = rendered
    height, width, _ = png.shape
    assert max(height, width) <= preview.MAX_SIDE
    ink = (png < 128).any(axis=2)  # dark pixels: text, ticks, frames
    assert ink[:preview.TOP].sum() > 200  # the title
    assert ink[-preview.BOTTOM:, preview.LEFT:-preview.RIGHT].sum() > 500  # RA tick labels and axis label
    assert ink[preview.TOP:-preview.BOTTOM, :preview.LEFT].sum() > 500  # Dec tick labels and axis label
    assert ink[preview.TOP:-preview.BOTTOM, -preview.RIGHT + 60:].sum() > 300  # colour bar ticks and unit
    green = (png[..., 1] > 200) & (png[..., 0] < 100) & (png[..., 2] < 100)  # the lime source marks
    assert green.sum() > 40 * len(rows)


@pytest.mark.parametrize("shape", [(60, 5000), (4100, 90)])
def test_the_long_side_stays_within_2048_px(tmp_path, shape):
    path = tmp_path / "strip.fits"
    fits.PrimaryHDU(np.zeros(shape, dtype=np.float32), sky_header(*shape)).writeto(path)
    out = preview.write_preview(path, 0, [], tmp_path / "p.png")
    assert max(Image.open(out).size) <= 2048


def test_an_image_without_wcs_gets_pixel_axes(tmp_path):
    path = tmp_path / "plain.fits"
    fits.PrimaryHDU(np.random.default_rng(2).normal(size=(50, 80)).astype(np.float32)).writeto(path)
    out = preview.write_preview(path, 0, [{"x": 10.0, "y": 20.0}], tmp_path / "p.png")
    assert Image.open(out).size[0] > 640


def test_no_pyplot_is_imported():
    code = ("import sys; from caesar_faas.catalog import preview; from caesar_faas.runner import products; "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (1154, 1284), (7, 2048)])
def test_the_png_encoder_gives_back_every_pixel(shape):
    """png_bytes (the preview's own encoder): Pillow reads back exactly the pixels written."""
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    with Image.open(io.BytesIO(preview.png_bytes(rgb))) as decoded:
        assert decoded.format == "PNG" and decoded.mode == "RGB" and decoded.size == (shape[1], shape[0])
        assert np.array_equal(np.asarray(decoded), rgb)
