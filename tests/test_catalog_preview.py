"""preview.png: at most MAX_PIXELS on the long side, each preview pixel the mean of a block of
image pixels (NaN / BLANK left out), source marks placed on the reduced grid, drawn without
matplotlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from caesar_faas.catalog.preview import MAX_PIXELS, read_reduced, reduction_step, to_preview, write_preview


def _wcs_header() -> fits.Header:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype, wcs.wcs.crval, wcs.wcs.cdelt = ["RA---SIN", "DEC--SIN"], [150.0, -30.0], [-1 / 3600, 1 / 3600]
    return wcs.to_header()


def _png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)


def test_a_huge_image_is_reduced_to_at_most_max_pixels(tmp_path: Path) -> None:
    path = tmp_path / "big.fits"
    data = np.random.default_rng(1).standard_normal((2100, 4200)).astype(np.float32)
    fits.PrimaryHDU(data=data, header=_wcs_header()).writeto(path)
    rows = [{"x": 100.0, "y": 200.0, "major": 10.0, "minor": 8.0, "pa": 30.0}, {"x": 5.0, "y": 5.0}]
    png = _png(write_preview(path, 0, rows, tmp_path / "preview.png"))
    assert png.shape[:2] == (700, 1400)  # blocks of 3 x 3: 4200 / 3 <= 2048 < 4200 / 2
    assert max(png.shape[:2]) <= MAX_PIXELS


def test_a_small_image_keeps_its_size(tmp_path: Path) -> None:
    path = tmp_path / "small.fits"
    fits.PrimaryHDU(data=np.random.default_rng(2).standard_normal((300, 500)).astype(np.float32)).writeto(path)
    assert _png(write_preview(path, 0, [], tmp_path / "preview.png")).shape[:2] == (300, 500)
    assert reduction_step((2048, 2048)) == 1 and reduction_step((2049, 10)) == 2


def test_each_preview_pixel_is_the_mean_of_its_block_without_nan_or_blank(tmp_path: Path) -> None:
    data = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    data[0, 0] = np.nan
    path = tmp_path / "f.fits"
    fits.PrimaryHDU(data=data).writeto(path)
    image, step, _ = read_reduced(path, 0, max_pixels=3)  # 7 / 3 -> blocks of 3 x 3
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
    image, step, _ = read_reduced(tmp_path / "i.fits", 0, max_pixels=2)
    assert step == 2 and np.allclose(image, 21.0)


def test_compressed_images_are_reduced_from_their_tiles(tmp_path: Path) -> None:
    data = np.random.default_rng(3).integers(-1000, 1000, (64, 96)).astype(np.int32)  # lossless in RICE
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data=data)]).writeto(tmp_path / "c.fits")
    image, step, _ = read_reduced(tmp_path / "c.fits", 1, max_pixels=48)
    assert step == 2 and image.shape == (32, 48)
    assert np.allclose(image, data.reshape(32, 2, 48, 2).mean(axis=(1, 3)), atol=1e-5)


def test_source_marks_follow_the_reduced_grid(tmp_path: Path) -> None:
    """A bright point source and its mark land on the same preview pixel."""
    data = np.zeros((4000, 4000), dtype=np.float32)
    data[2999:3002, 1199:1202] = 100.0  # a 3 x 3 source centred on (x=1200, y=3000)
    path = tmp_path / "p.fits"
    fits.PrimaryHDU(data=data, header=_wcs_header()).writeto(path)
    image, step, _ = read_reduced(path, 0)
    assert step == 2
    peak_y, peak_x = np.unravel_index(np.argmax(image), image.shape)
    assert abs(to_preview(1200.0, step) - peak_x) <= 0.5 and abs(to_preview(3000.0, step) - peak_y) <= 0.5
    png = _png(write_preview(path, 0, [{"x": 1200.0, "y": 3000.0}], tmp_path / "preview.png"))
    lime = (png[..., 1] > 0.5) & (png[..., 0] < 0.5)  # the mark's green ring
    rows, cols = np.nonzero(lime)
    # PNG rows run top-down, the image bottom-up (origin="lower").
    assert abs(cols.mean() - peak_x) < 2 and abs((png.shape[0] - 1 - rows.mean()) - peak_y) < 2


def test_drawing_imports_neither_matplotlib_nor_astropy_visualization(tmp_path: Path) -> None:
    path = tmp_path / "s.fits"
    fits.PrimaryHDU(data=np.ones((20, 20), dtype=np.float32)).writeto(path)
    code = ("import sys; from pathlib import Path; from caesar_faas.catalog.preview import write_preview; "
            f"write_preview(Path({str(path)!r}), 0, [{{'x': 3.0, 'y': 4.0}}], Path({str(tmp_path / 'o.png')!r})); "
            "print('matplotlib' in sys.modules, 'astropy.visualization' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["False", "False"]
    assert (tmp_path / "o.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
