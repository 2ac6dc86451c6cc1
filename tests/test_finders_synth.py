"""The synthetic image generator and the truth matcher the finder tests rely on."""

from __future__ import annotations

import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from tests.synth import DEFAULT_RMS, make_image, match


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "f.fits"
    truth = make_image(str(path), size=512, n_sources=60, seed=7)
    with fits.open(path) as hdul:
        return path, truth, hdul[0].header.copy(), hdul[0].data.copy()


def test_header_is_a_radio_image(field):
    _, _, hdr, data = field
    assert data.shape == (1, 1, 512, 512) and data.dtype.kind == "f"
    assert hdr["CTYPE1"] == "RA---SIN" and hdr["CTYPE2"] == "DEC--SIN"
    assert hdr["CDELT1"] == pytest.approx(-2 / 3600) and hdr["CDELT2"] == pytest.approx(2 / 3600)
    assert hdr["BMAJ"] == pytest.approx(8 / 3600) and hdr["BMIN"] == pytest.approx(8 / 3600)
    assert hdr["BPA"] == 0.0 and hdr["BUNIT"].upper() == "JY/BEAM"
    assert hdr["CTYPE3"] == "FREQ" and hdr["CRVAL3"] == 1.4e9 and hdr["RESTFRQ"] == 1.4e9
    w = WCS(hdr)
    assert w.has_celestial and w.wcs.spec == 2


def test_header_without_beam_or_frequency(tmp_path):
    path = tmp_path / "bare.fits"
    make_image(str(path), size=128, n_sources=3, header_beam=False, header_freq=False)
    hdr = fits.getheader(path)
    assert hdr["NAXIS"] == 2
    for key in ("BMAJ", "BMIN", "BPA", "RESTFRQ", "CTYPE3"):
        assert key not in hdr


def test_truth_rows(field):
    _, truth, hdr, _ = field
    assert len(truth) == 60
    snrs = [t["snr"] for t in truth]
    assert snrs == sorted(snrs, reverse=True)
    assert snrs[0] == pytest.approx(200.0) and snrs[-1] == pytest.approx(5.0)
    # log-spread: as many sources per decade of SNR
    assert sum(s < 10 for s in snrs) / len(snrs) == pytest.approx(np.log(2) / np.log(40), abs=0.03)
    xy = np.array([[t["x"], t["y"]] for t in truth])
    assert xy.min() >= 32 and xy.max() <= 511 - 32  # 8 beams from the edges
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert d[np.triu_indices(60, 1)].min() >= 32  # 8 beams apart
    ra, dec = WCS(hdr).celestial.all_pix2world(xy[:, 0], xy[:, 1], 0)
    assert np.allclose(ra, [t["ra"] for t in truth]) and np.allclose(dec, [t["dec"] for t in truth])
    for t in truth:
        assert t["peak_flux"] == pytest.approx(t["snr"] * DEFAULT_RMS) == t["int_flux"]


def test_noise_level_and_correlation(field):
    _, truth, _, data = field
    img = data[0, 0].astype(float)
    yy, xx = np.mgrid[0:512, 0:512]
    far = np.ones_like(img, dtype=bool)
    for t in truth:
        far &= np.hypot(xx - t["x"], yy - t["y"]) > 20
    assert np.std(img[far]) == pytest.approx(DEFAULT_RMS, rel=0.06)
    noise = np.where(far, img, 0.0)
    both = far[:, 1:] & far[:, :-1]
    corr = np.corrcoef(noise[:, 1:][both], noise[:, :-1][both])[0, 1]
    assert corr > 0.85  # beam-correlated, not white (white noise would give ~0)


def test_sources_are_at_their_truth_positions(field):
    _, truth, _, data = field
    img = data[0, 0]
    for t in truth:
        if t["snr"] >= 50:
            value = img[int(round(t["y"])), int(round(t["x"]))]
            assert 0.8 * t["peak_flux"] < value < 1.1 * t["peak_flux"]


def test_deterministic(tmp_path):
    a, b, c = (tmp_path / n for n in ("a.fits", "b.fits", "c.fits"))
    assert make_image(str(a), size=256, n_sources=10, seed=3) == make_image(str(b), size=256,
                                                                            n_sources=10, seed=3)
    make_image(str(c), size=256, n_sources=10, seed=4)
    assert np.array_equal(fits.getdata(a), fits.getdata(b))
    assert not np.array_equal(fits.getdata(a), fits.getdata(c))


def test_elliptical_beam_header(tmp_path):
    path = tmp_path / "e.fits"
    make_image(str(path), size=256, n_sources=5, beam_pix=(6.0, 3.0, 45.0))
    hdr = fits.getheader(path)
    assert hdr["BMAJ"] == pytest.approx(12 / 3600) and hdr["BMIN"] == pytest.approx(6 / 3600)
    assert hdr["BPA"] == 45.0


def test_full_size_image_is_fast(tmp_path):
    start = time.monotonic()
    truth = make_image(str(tmp_path / "big.fits"), size=2048, n_sources=300)
    assert time.monotonic() - start < 10.0
    assert len(truth) == 300


def test_match_counts():
    truth = [{"x": 10.0, "y": 10.0, "snr": 20.0}, {"x": 50.0, "y": 50.0, "snr": 8.0},
             {"x": 90.0, "y": 90.0, "snr": 30.0}]
    catalog = [{"x": 10.5, "y": 10.0}, {"x": 11.0, "y": 10.5},  # a split source
               {"x": 90.0, "y": 93.0},  # too far
               {"x": 200.0, "y": 5.0}]  # noise
    m = match(catalog, truth, radius_pix=2.0)
    assert [(t, c) for t, c, _ in m.recovered] == [(0, 0)]
    assert m.missed == [1, 2] and m.spurious == [1, 2, 3]
    assert m.recovered_fraction(truth, min_snr=10) == 0.5
    assert m.recovered_fraction(truth) == pytest.approx(1 / 3)
    assert m.spurious_fraction == 0.75
    assert [t["snr"] for t in m.missed_above(truth, 10)] == [30.0]
    empty = match([], truth, 2.0)
    assert empty.missed == [0, 1, 2] and empty.spurious_fraction == 0.0
