"""preview.png's pixels: each binned pixel the mean of its block (NaN / BLANK left out, compressed
images read from their tiles), and the marks drawn on their own layer landing on the sources of
the prepared panel beneath (prepare and draw are separate steps: runner/background.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from caesar_faas.catalog.preview import LEFT, TOP, draw, prepare, read_binned


def _wcs_header() -> fits.Header:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype, wcs.wcs.crval, wcs.wcs.cdelt = ["RA---SIN", "DEC--SIN"], [150.0, -30.0], [-1 / 3600, 1 / 3600]
    return wcs.to_header()


def test_each_binned_pixel_is_the_mean_of_its_block_without_nan_or_blank(tmp_path: Path) -> None:
    data = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    data[0, 0] = np.nan
    path = tmp_path / "f.fits"
    fits.PrimaryHDU(data=data).writeto(path)
    image, step, _ = read_binned(path, 0, max_pixels=3)  # 7 / 3 -> blocks of 3 x 3
    assert step == 3 and image.shape == (2, 3)
    assert image[0, 0] == pytest.approx(np.nanmean(data[0:3, 0:3]))
    assert image[1, 2] == pytest.approx(data[3:5, 6:7].mean())  # the partial edge block
    # Integers with BLANK and BSCALE/BZERO: BLANK pixels are left out before scaling.
    raw = np.full((4, 4), 10, dtype=np.int16)
    raw[0, 0] = -32768
    hdu = fits.PrimaryHDU(data=raw)
    hdu.header["BLANK"], hdu.header["BSCALE"], hdu.header["BZERO"] = -32768, 2.0, 1.0
    hdu.writeto(tmp_path / "i.fits", output_verify="silentfix")
    with fits.open(tmp_path / "i.fits", do_not_scale_image_data=True) as check:
        assert check[0].data[0, 0] == -32768
    image, step, _ = read_binned(tmp_path / "i.fits", 0, max_pixels=2)
    assert step == 2 and np.allclose(image, 21.0)


def test_compressed_images_are_binned_from_their_tiles(tmp_path: Path) -> None:
    data = np.random.default_rng(3).integers(-1000, 1000, (64, 96)).astype(np.int32)  # lossless in RICE
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data=data)]).writeto(tmp_path / "c.fits")
    image, step, _ = read_binned(tmp_path / "c.fits", 1, max_pixels=48)
    assert step == 2 and image.shape == (32, 48)
    assert np.allclose(image, data.reshape(32, 2, 48, 2).mean(axis=(1, 3)), atol=1e-5)


def test_the_marks_layer_lands_on_the_source_in_the_prepared_panel(tmp_path: Path) -> None:
    """A bright point source binned 4 x 4: its mark, drawn on a separate layer after prepare,
    is centred on the panel pixel where the source shows."""
    data = np.zeros((4000, 4000), dtype=np.float32)
    data[2999:3002, 1199:1202] = 100.0  # a 3 x 3 source centred on (x=1200, y=3000)
    path = tmp_path / "p.fits"
    fits.PrimaryHDU(data=data, header=_wcs_header()).writeto(path)
    prepared = prepare(path, 0)
    assert prepared.f == 4
    out = draw(prepared, [{"x": 1200.0, "y": 3000.0}], tmp_path / "preview.png", title="p.fits")
    png = np.asarray(Image.open(out).convert("RGB")).astype(int)
    panel_h = prepared.shape[0] * prepared.zoom
    # The source, where prepare put it (brightest panel pixel; PNG rows run downwards).
    panel = prepared.base[TOP:TOP + panel_h, LEFT:LEFT + prepared.shape[1] * prepared.zoom].sum(axis=2)
    src_row, src_col = np.unravel_index(np.argmax(panel), panel.shape)
    lime = (png[..., 1] > 200) & (png[..., 0] < 100) & (png[..., 2] < 100)
    rows, cols = np.nonzero(lime)
    assert len(rows) > 8  # a ring of MIN_MARKER panel pixels, antialiased
    assert abs(cols.mean() - (LEFT + src_col)) < 2 and abs(rows.mean() - (TOP + src_row)) < 2
    # Everything but the marks and the title is the prepared base, untouched.
    below_title = slice(TOP, None)
    same = (png[below_title] == prepared.base[below_title].astype(int)).all(axis=2)
    assert same.mean() > 0.99
