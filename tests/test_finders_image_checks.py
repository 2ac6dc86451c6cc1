"""check_image refusals and the shape of the command lines each adapter produces."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from caesar_faas.apps import get_app, validate_options
from caesar_faas.runner.finders import UsageError, load_adapter, read_header
from caesar_faas.runner.finders.fitsinfo import beam_for, frequency_for, header_beam
from tests.synth import make_image

APPS = ("aegean", "pybdsf", "sep")


def _opts(app: str, **given) -> dict:
    return validate_options(get_app(app), given)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("checks")
    paths = {}
    for name, kw in {"full": {}, "nobeam": {"header_beam": False},
                     "nofreq": {"header_freq": False},
                     "bare": {"header_beam": False, "header_freq": False}}.items():
        paths[name] = d / f"{name}.fits"
        make_image(str(paths[name]), size=128, n_sources=4, **kw)
    return paths


@pytest.mark.parametrize("app", APPS)
def test_good_image_passes(app, images):
    load_adapter(app).check_image(read_header(str(images["full"])), _opts(app))


@pytest.mark.parametrize("app", APPS)
def test_no_beam_refused_unless_given(app, images):
    header = read_header(str(images["nobeam"]))
    with pytest.raises(UsageError, match="no restoring beam.*bmaj and bmin"):
        load_adapter(app).check_image(header, _opts(app))
    load_adapter(app).check_image(header, _opts(app, bmaj=8.0, bmin=8.0))


def test_beam_options_override_the_header(images):
    header = read_header(str(images["full"]))
    beam = beam_for(header, _opts("sep", bmaj=20.0, bmin=10.0, bpa=30.0))
    assert (beam.bmaj, beam.bmin, beam.bpa) == pytest.approx((20 / 3600, 10 / 3600, 30.0))
    assert beam_for(header, _opts("sep")).bmaj == pytest.approx(8 / 3600)


def test_beam_from_aips_history():
    header = fits.Header()
    header.add_history("AIPS   CLEAN BMAJ=  2.2222E-03 BMIN=  1.1111E-03 BPA=  45.00")
    beam = header_beam(header)
    assert (beam.bmaj, beam.bmin, beam.bpa) == pytest.approx((2.2222e-3, 1.1111e-3, 45.0))


def test_swapped_header_axes_are_fixed():
    header = fits.Header({"BMAJ": 1e-3, "BMIN": 2e-3, "BPA": 10.0})
    beam = header_beam(header)
    assert (beam.bmaj, beam.bmin, beam.bpa) == pytest.approx((2e-3, 1e-3, 100.0))
    assert header_beam(fits.Header({"BMAJ": 0.0, "BMIN": 0.0})) is None


def test_pybdsf_needs_a_frequency(images):
    adapter = load_adapter("pybdsf")
    header = read_header(str(images["nofreq"]))
    with pytest.raises(UsageError, match="frequency"):
        adapter.check_image(header, _opts("pybdsf"))
    adapter.check_image(header, _opts("pybdsf", frequency=1.4e9))
    # aegean and sep do not need one
    load_adapter("aegean").check_image(header, _opts("aegean"))
    load_adapter("sep").check_image(header, _opts("sep"))
    # RESTFRQ alone (no spectral axis) is enough; so is the old RESTFREQ
    for key in ("RESTFRQ", "RESTFREQ"):
        h = header.copy()
        h[key] = 8.8e8
        assert frequency_for(h, _opts("pybdsf")) == 8.8e8
        adapter.check_image(h, _opts("pybdsf"))


def test_frequency_from_the_axis(images):
    header = read_header(str(images["full"]))
    del header["RESTFRQ"]
    header["CUNIT3"] = "MHz"
    header["CRVAL3"] = 943.5
    header["CDELT3"] = 1.0
    assert frequency_for(header, {}) == pytest.approx(943.5e6)
    assert frequency_for(header, {"frequency": 1e9}) == 1e9


def _header_with(data_shape, **cards) -> fits.Header:
    header = fits.PrimaryHDU(np.zeros(data_shape, dtype=np.float32)).header
    base = {"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CRVAL1": 10.0, "CRVAL2": -20.0,
            "CRPIX1": 10.0, "CRPIX2": 10.0, "CDELT1": -1e-3, "CDELT2": 1e-3, "BMAJ": 3e-3,
            "BMIN": 3e-3, "BPA": 0.0}
    base.update(cards)
    for key, value in base.items():
        if value is None:
            header.remove(key, ignore_missing=True)
        else:
            header[key] = value
    return header


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("shape, cards, words", [
    ((2, 64, 64), {"CTYPE3": "FREQ"}, "cube with 2 planes"),
    ((64, 64), {"CTYPE1": "LINEAR", "CTYPE2": "LINEAR"}, "no celestial WCS"),
    ((64, 64), {"CTYPE1": None, "CTYPE2": None}, "no celestial WCS"),
    ((8, 8), {}, "at least 16x16"),
    (None, {}, "no 2-D image"),
])
def test_unusable_images_refused(app, shape, cards, words):
    header = _header_with(shape, **cards) if shape else fits.PrimaryHDU().header
    with pytest.raises(UsageError, match=words):
        load_adapter(app).check_image(header, _opts(app, frequency=1e9) if app == "pybdsf" else _opts(app))


def test_read_header_refuses_non_fits(tmp_path):
    bad = tmp_path / "x.fits"
    bad.write_text("this is not FITS")
    with pytest.raises(UsageError, match="not a readable FITS"):
        read_header(str(bad))
    with pytest.raises(UsageError):
        read_header(str(tmp_path / "missing.fits"))


def _argv(app, image, workdir, **given):
    cmds = load_adapter(app).argv(str(image), _opts(app, **given), str(workdir))
    for cmd in cmds:
        assert isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd)
        assert cmd[0] == sys.executable
    return cmds


def test_aegean_argv(images, tmp_path):
    bane, aegean = _argv("aegean", images["full"], tmp_path, seedclip=6.0, maxsummits=4,
                         bane_grid=20, negative=True)
    assert bane[-1] == str(images["full"].resolve()) and aegean[-1] == bane[-1]
    assert Path(bane[2]).name == "bane_main.py" and bane[3] == load_adapter("aegean").shm_id(str(tmp_path))
    assert "AegeanTools.CLI.aegean" in aegean[3]
    for cmd in (bane, aegean):
        assert cmd[cmd.index("--cores") + 1] == "1"
    assert bane[bane.index("--grid") + 1: bane.index("--grid") + 3] == ["20", "20"]
    assert bane[bane.index("--box") + 1] == "120"  # 6 x grid, BANE's rule
    assert aegean[aegean.index("--seedclip") + 1] == "6.0"
    assert aegean[aegean.index("--maxsummits") + 1] == "4"
    assert "--negative" in aegean and "--nocov" not in aegean
    assert float(aegean[aegean.index("--beam") + 1]) == pytest.approx(8 / 3600, rel=1e-12)
    assert aegean[aegean.index("--table") + 1] == str(tmp_path / "aegean.fits")
    assert aegean[aegean.index("--noise") + 1] == str(tmp_path / "bane_rms.fits")


def test_aegean_argv_default_grid_from_the_beam_option(images, tmp_path):
    # Without BMAJ in the header BANE would assume 4 pixels per beam; we pass the real one.
    bane, _ = _argv("aegean", images["nobeam"], tmp_path, bmaj=20.0, bmin=20.0)
    assert bane[bane.index("--grid") + 1] == "40"  # 4 x 10-pixel beam


def test_aegean_skips_bane_when_both_levels_are_forced(images, tmp_path):
    cmds = _argv("aegean", images["full"], tmp_path, forcerms=1e-4, forcebkg=0.0)
    assert len(cmds) == 1
    assert "--forcerms" in cmds[0] and "--background" not in cmds[0]


@pytest.mark.parametrize("app, script", [("pybdsf", "pybdsf_main.py"), ("sep", "sep_main.py")])
def test_library_finders_run_a_standalone_entry(app, script, images, tmp_path):
    (cmd,) = _argv(app, images["full"], tmp_path)
    assert cmd[1] == "-P" and Path(cmd[2]).name == script and Path(cmd[2]).is_file()
    args = json.loads(Path(cmd[3]).read_text())
    assert Path(cmd[3]).parent == tmp_path
    assert args["image"] == str(images["full"].resolve())
    if app == "pybdsf":
        assert args["process"]["ncores"] == 1 and args["process"]["outdir"] == str(tmp_path)
        assert args["process"]["beam"] == pytest.approx([8 / 3600, 8 / 3600, 0.0])
        assert args["process"]["frequency"] == 1.4e9
    else:
        assert args["params"]["thresh"] == 5.0 and args["params"]["kernel"] is None


def test_sep_beam_kernel_follows_the_position_angle(images, tmp_path):
    (cmd,) = _argv("sep", images["full"], tmp_path, filter_kernel="beam", bmaj=16.0, bmin=8.0,
                   bpa=90.0)
    kernel = np.array(json.loads(Path(cmd[3]).read_text())["params"]["kernel"])
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    c = kernel.shape[0] // 2
    # PA 90 = East = -x on a north-up image: the kernel is wide along x, narrow along y.
    assert kernel[c, c + 3] > kernel[c + 3, c] and kernel[c, c] == 1.0


@pytest.mark.parametrize("app", APPS)
def test_relative_paths_become_absolute(app, images, tmp_path, monkeypatch):
    # The commands run with cwd=workdir: a relative path would point somewhere else there.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    image = Path("img.fits")
    image.write_bytes(images["full"].read_bytes())
    for cmd in load_adapter(app).argv(str(image), _opts(app), "work"):
        for arg in cmd:
            if arg.endswith((".fits", ".json", ".py")) or "/" in arg and not arg.startswith("import"):
                assert Path(arg).is_absolute(), arg
        for arg in cmd:
            if arg.endswith(".json"):
                args = json.loads(Path(arg).read_text())
                assert Path(args["image"]).is_absolute()
