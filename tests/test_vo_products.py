"""Products that VO tools read natively: the VOTable (UCD1+ on every column, COOSYS from the
image's RADESYS/EQUINOX, frequency and beam PARAMs, provenance INFOs) passes astropy's validator
with no warning; the DS9 regions are in the image's own frame; the finders' maps are FITS with
the input's WCS, listed in the manifest."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits, votable
from astropy.io.votable import parse
from astropy.wcs import WCS
from regions import Regions

from caesar_faas.apps.registry import get_app
from caesar_faas.apps.validation import validate_options
from caesar_faas.catalog.frames import sky_frame
from caesar_faas.catalog.schema import COLUMNS, NAMES
from caesar_faas.runner.products import write_catalog_products
from tests.synth import make_image


def assert_no_votable_warnings(data: bytes) -> votable.tree.VOTableFile:
    path = io.BytesIO(data)
    report = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert votable.validate(path, output=report), report.getvalue()
        doc = parse(io.BytesIO(data), verify="exception")  # any spec warning raises here
    assert "found no violations" in report.getvalue(), report.getvalue()
    assert not [w for w in caught if "votable" in str(w.category).lower()], [str(w.message) for w in caught]
    return doc


def check_catalog(doc: votable.tree.VOTableFile, *, system: str, equinox: str | None, app: str) -> None:
    resource = doc.resources[0]
    table = resource.tables[0]
    fields = {f.name: f for f in table.fields}
    assert list(fields) == NAMES
    assert all(f.ucd for f in fields.values()), [n for n, f in fields.items() if not f.ucd]
    assert fields["ra"].ucd.startswith("pos.eq.ra;meta.main") and fields["dec"].ucd.startswith("pos.eq.dec;meta.main")
    assert fields["int_flux"].ucd == "phot.flux.density" and fields["ra_err"].ucd.startswith("stat.error")
    assert fields["major"].ucd.startswith("phys.angSize")
    units = {n: str(f.unit) if f.unit is not None else "" for n, f in fields.items()}
    assert units["ra"] == "deg" and units["int_flux"] == "Jy" and units["major"] == "arcsec"
    (coosys,) = resource.coordinate_systems
    assert (coosys.system, coosys.equinox) == (system, equinox)
    assert fields["ra"].ref == coosys.ID == fields["dec"].ref
    params = {p.name: p for p in table.params}
    assert params["image_frequency"].value == pytest.approx(1.4e9) and str(params["image_frequency"].unit) == "Hz"
    assert params["image_frequency"].ucd == "em.freq"
    assert params["beam_major"].value == pytest.approx(8.0) and str(params["beam_major"].unit) == "arcsec"
    assert {"beam_minor", "beam_pa"} <= set(params)
    infos = {i.name: i.value for i in resource.infos}
    assert infos["app"] == app and infos["app_version"] and len(infos["input_sha256"]) == 64
    assert json.loads(infos["options"]) and any(name.startswith("software.") for name in infos)


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    path = tmp_path_factory.mktemp("vo") / "field.fits"
    truth = make_image(str(path), size=256, n_sources=8, seed=5)  # FK5 J2000, a FREQ axis, 8" beam
    return path, truth


def check_map(data: bytes, image: Path, name: str) -> None:
    with fits.open(io.BytesIO(data)) as hdul:
        header, values = hdul[0].header, hdul[0].data
        with fits.open(image) as src:
            source = src[0].header
            shape = src[0].data.shape[-2:]
        assert values.shape == shape and np.isfinite(values).mean() > 0.9, name
        got, want = WCS(header), WCS(source).celestial
        assert got.naxis == 2 and got.wcs.radesys == want.wcs.radesys == "FK5"
        pixels = np.array([[0.0, 0.0], [shape[1] - 1.0, shape[0] - 1.0], [100.5, 37.25]])
        np.testing.assert_allclose(got.all_pix2world(pixels, 0), want.all_pix2world(pixels, 0), atol=1e-10)
        assert header["BUNIT"] == source["BUNIT"] and header["BMAJ"] == source["BMAJ"]


@pytest.mark.parametrize(("app", "maps"), [
    ("aegean", {"background.fits", "rms.fits"}),
    ("pybdsf", {"background.fits", "rms.fits", "residual.fits"}),
])
def test_real_jobs_write_vo_products(runner_job, field, app, maps):
    image, truth = field
    job = runner_job(app, image, options=validate_options(get_app(app), {}))  # as the runner gets them
    assert job.run(wait=300) == 0, job.log_text()[-3000:]
    stored = job.stored()
    doc = assert_no_votable_warnings(stored["catalog.vot"])
    check_catalog(doc, system="FK5", equinox="J2000.0", app=app)
    assert len(doc.get_first_table().array) >= len(truth) - 2
    assert stored["sources.reg"].decode().splitlines()[3] == "fk5"
    regions = Regions.parse(stored["sources.reg"].decode(), format="ds9")
    assert len(regions) == len(doc.get_first_table().array)
    assert regions[0].center.frame.name == "fk5"
    manifest = {entry["name"]: entry for entry in json.loads(stored["manifest.json"])}
    for name in maps:
        assert manifest[name]["media_type"] == "application/fits" and manifest[name]["size"] == len(stored[name])
        check_map(stored[name], image, name)
    assert not (set(stored) & {"background.fits", "rms.fits", "residual.fits"}) - maps
    if app == "pybdsf":  # the residual of fitted point sources is mostly noise
        with fits.open(io.BytesIO(stored["residual.fits"])) as resid, fits.open(image) as src:
            assert np.nanmax(np.abs(resid[0].data)) < 0.5 * np.nanmax(src[0].data)


def rows_at(header: fits.Header) -> list[dict]:
    wcs = WCS(header).celestial
    ra, dec = wcs.all_pix2world([[10.0, 12.0], [30.0, 40.0]], 0).T
    return [{"id": i + 1, "name": f"S{i}", "ra": float(ra[i]), "dec": float(dec[i]), "x": 10.0 + 20 * i,
             "y": 12.0 + 28 * i, "peak_flux": 1e-3, "int_flux": 1.1e-3, "major": 9.0, "minor": 8.0, "pa": 30.0,
             "flags": 0} for i in range(2)]


@pytest.mark.parametrize(("cards", "system", "equinox", "ds9"), [
    ({"RADESYS": "ICRS"}, "ICRS", None, "icrs"),
    ({"RADESYS": "FK5", "EQUINOX": 2000.0}, "FK5", "J2000.0", "fk5"),
    ({"EQUINOX": 2000.0}, "FK5", "J2000.0", "fk5"),  # FITS default: FK5 when only EQUINOX >= 1984
    ({"EQUINOX": 1950.0}, "FK4", "B1950.0", "fk4"),
    ({}, "ICRS", None, "icrs"),  # nothing said: ICRS
])
def test_the_products_follow_the_image_frame(tmp_path, cards, system, equinox, ds9):
    image = tmp_path / "img.fits"
    data = np.zeros((64, 64), dtype=np.float32)
    header = fits.Header({"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CRVAL1": 150.0, "CRVAL2": -30.0,
                          "CRPIX1": 33.0, "CRPIX2": 33.0, "CDELT1": -2 / 3600, "CDELT2": 2 / 3600,
                          "BMAJ": 8 / 3600, "BMIN": 8 / 3600, "BPA": 0.0, "RESTFRQ": 1.4e9, "BUNIT": "JY/BEAM", **cards})
    fits.PrimaryHDU(data, header).writeto(image)
    header = fits.getheader(image)
    provenance = {"app": "sep", "app_version": "1", "job_id": "j", "options": {"thresh": 5.0},
                  "input_sha256": "0" * 64, "software": {"numpy": "2"}}
    write_catalog_products(rows_at(header), tmp_path / "out", image_path=image, hdu_index=0, header=header,
                           provenance=provenance)
    assert sky_frame(header).system == system
    doc = assert_no_votable_warnings((tmp_path / "out" / "catalog.vot").read_bytes())
    check_catalog(doc, system=system, equinox=equinox, app="sep")
    text = (tmp_path / "out" / "sources.reg").read_text()
    assert text.splitlines()[3] == ds9
    regions = Regions.parse(text, format="ds9")
    assert [r.center.frame.name for r in regions] == [ds9, ds9]


def test_a_galactic_image_says_so(tmp_path):
    header = fits.Header({"NAXIS": 2, "NAXIS1": 64, "NAXIS2": 64, "CTYPE1": "GLON-CAR", "CTYPE2": "GLAT-CAR",
                          "CRVAL1": 30.0, "CRVAL2": 0.0, "CRPIX1": 33.0, "CRPIX2": 33.0, "CDELT1": -1e-3,
                          "CDELT2": 1e-3})
    frame = sky_frame(header)
    assert (frame.system, frame.ds9, frame.lon_ucd) == ("galactic", "galactic", "pos.galactic.lon")
    from caesar_faas.catalog.values import ordered_rows
    from caesar_faas.catalog.votable import write_votable

    path = write_votable(ordered_rows(rows_at(header), NAMES), COLUMNS, {"app": "sep", "options": {}},
                         tmp_path / "g.vot", frame=frame)
    doc = assert_no_votable_warnings(path.read_bytes())
    fields = {f.name: f for f in doc.get_first_table().fields}
    assert fields["ra"].ucd == "pos.galactic.lon;meta.main" and doc.resources[0].coordinate_systems[0].system == "galactic"
