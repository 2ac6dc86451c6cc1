"""The real runner end to end: `python -m caesar_faas.runner` with the contract environment,
a file:// storage, the session's nats-server and the real finder adapters, on synthetic images.

Proves: the status events (started, increasing progress, finished SUCCESS exit 0), every product
stored with the manifest's sizes and sha256, catalog.vot readable with units and provenance,
sources.reg readable by `regions`, and the catalogue equal to what the adapter gives when run
directly."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits, votable
from astropy.table import Table
from astropy.wcs import WCS
from regions import EllipseSkyRegion, Regions

from caesar_faas.apps.registry import get_app
from caesar_faas.apps.validation import validate_options
from caesar_faas.catalog.schema import COLUMNS, NAMES
from caesar_faas.runner.contract import THREAD_ENV
from caesar_faas.runner.finders import load_adapter
from tests.synth import make_image

PRODUCTS = ["catalog.csv", "catalog.vot", "catalog.json", "sources.reg", "preview.png", "job.log",
            "manifest.json"]
MEDIA = {"catalog.csv": "text/csv", "catalog.vot": "application/x-votable+xml",
         "catalog.json": "application/json", "sources.reg": "text/plain", "preview.png": "image/png",
         "job.log": "text/plain"}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("images") / "field.fits"
    truth = make_image(str(path), size=256, n_sources=8, seed=3)
    return path, truth


def defaults(app: str, **changes: Any) -> dict[str, Any]:
    """Options as the runner receives them: validated, defaults filled."""
    return validate_options(get_app(app), changes)


def direct_catalog(app: str, image_path: Path, options: dict[str, Any], workdir: Path) -> list[dict[str, Any]]:
    """The adapter's catalogue when its commands are run directly, without the runner."""
    workdir.mkdir()
    adapter = load_adapter(get_app(app).local_entry)
    env = dict(os.environ, **THREAD_ENV, HOME=str(workdir), TMPDIR=str(workdir))
    for argv in adapter.argv(str(image_path), options, str(workdir)):
        subprocess.run(argv, cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return adapter.read_catalog(str(workdir), str(image_path), options)


def check_events(events: list[dict[str, Any]], job_id: str, owner: str) -> dict[str, Any]:
    """The event sequence of a successful job; returns the finished data."""
    data = [e["data"] for e in events]
    phases = [d["phase"] for d in data]
    assert phases[0] == "started" and phases[-1] == "finished", phases
    assert set(phases[1:-1]) == {"progress"}
    assert len(phases) >= 8  # fetched, header, >= 1 command, normalised, written, uploaded
    seqs = [d["seq"] for d in data]
    assert seqs == list(range(1, len(seqs) + 1))  # NATS up: nothing dropped, in order
    progress = [d["progress"] for d in data]
    assert progress[0] == 0 and progress[-1] == 100
    assert all(a < b for a, b in zip(progress, progress[1:], strict=False)), progress  # strictly increasing
    for event in events:
        assert event["type"] == "org.caesar.jobs.status"
        assert event["subject"] == job_id
        assert event["id"] == f"{job_id}-{event['data']['seq']}"
        assert event["data"]["owner"] == owner
    return data[-1]


def test_sep_job_end_to_end(runner_job, image, tmp_path: Path) -> None:
    image_path, truth = image
    options = defaults("sep")
    job = runner_job("sep", image_path, options=options, gzipped=True)  # exercises streamed gunzip
    assert job.run(wait=120) == 0

    final = check_events(job.events(), job.job_id, job.owner)
    assert set(final) == {"job_id", "owner", "seq", "phase", "progress", "message", "state", "exit_code",
                          "elapsed", "cpu_seconds", "error_class", "products", "sig"}  # the contract's (runner/contract.py)
    assert final["cpu_seconds"] > 0
    assert (final["state"], final["exit_code"], final["error_class"]) == ("SUCCESS", 0, None)
    assert final["elapsed"] > 0
    assert final["products"] == PRODUCTS
    result = job.result()
    assert {k: result[k] for k in ("state", "exit_code", "error_class", "products", "elapsed")} == \
        {k: final[k] for k in ("state", "exit_code", "error_class", "products", "elapsed")}

    stored = job.stored()
    assert sorted(stored) == sorted(PRODUCTS)
    manifest = json.loads(stored["manifest.json"])
    assert [entry["name"] for entry in manifest] == PRODUCTS[:-1]
    for entry in manifest:
        body = stored[entry["name"]]
        assert entry["size"] == len(body) > 0
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
        assert entry["media_type"] == MEDIA[entry["name"]]

    # The catalogue is exactly the adapter's, through every product.
    expected = direct_catalog("sep", image_path, options, tmp_path / "direct")
    assert len(expected) >= len([t for t in truth if t["snr"] >= 10])
    doc = json.loads(stored["catalog.json"])
    assert doc["sources"] == expected
    assert [c["name"] for c in doc["columns"]] == NAMES
    assert {c["name"]: c["unit"] for c in doc["columns"]}["peak_flux"] == "Jy/beam"
    input_sha = hashlib.sha256(job.storage.read_bytes(job.input_key)).hexdigest()
    assert doc["provenance"]["input_sha256"] == input_sha
    assert doc["provenance"]["options"] == options
    assert doc["provenance"]["app"] == "sep" and doc["provenance"]["job_id"] == job.job_id

    rows = list(csv.DictReader(io.StringIO(stored["catalog.csv"].decode())))
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        for name in NAMES:
            if want[name] is None:
                assert got[name] == ""
            elif isinstance(want[name], float):
                assert float(got[name]) == want[name]
            else:
                assert got[name] == str(want[name])

    table = Table.read(io.BytesIO(stored["catalog.vot"]), format="votable")
    assert table.colnames == NAMES
    for name, unit, _dtype, description in COLUMNS:
        assert table[name].unit == (u.Unit(unit) if unit else None), name
        assert " ".join(table[name].description.split()) == description  # the XML wraps long text
    assert table["peak_flux"].unit == u.Jy / u.beam and table["major"].unit == u.arcsec
    for got, want in zip(table, expected, strict=True):
        assert math.isclose(got["peak_flux"], want["peak_flux"], rel_tol=1e-12)
        assert got["id"] == want["id"]
    infos = {info.name: info.value for info in votable.parse(io.BytesIO(stored["catalog.vot"])).resources[0].infos}
    assert infos["app"] == "sep" and infos["job_id"] == job.job_id
    assert infos["input_sha256"] == input_sha and infos["software.sep"] == "1.4.1"
    assert json.loads(infos["options"]) == options

    (tmp_path / "sources.reg").write_bytes(stored["sources.reg"])
    regions = Regions.read(str(tmp_path / "sources.reg"), format="ds9")
    assert len(regions) == len(expected)
    assert all(isinstance(r, EllipseSkyRegion) for r in regions)
    first = regions[0]
    assert math.isclose(first.center.ra.deg, expected[0]["ra"], abs_tol=1e-6)
    assert math.isclose(first.width.to_value("arcsec"), expected[0]["major"], rel_tol=1e-3)

    assert stored["preview.png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert "command 1/1" in stored["job.log"].decode()


def test_aegean_job_end_to_end(runner_job, image, tmp_path: Path) -> None:
    image_path, _truth = image
    options = defaults("aegean")
    job = runner_job("aegean", image_path, options=options)
    assert job.run(wait=180) == 0, job.log_text()
    final = check_events(job.events(), job.job_id, job.owner)
    assert (final["state"], final["exit_code"]) == ("SUCCESS", 0)
    stored = job.stored()
    assert sorted(stored) == sorted(PRODUCTS + ["background.fits", "rms.fits"])  # + BANE's maps (issue 15)
    manifest = {e["name"]: e for e in json.loads(stored["manifest.json"])}
    assert all(manifest[n]["sha256"] == hashlib.sha256(stored[n]).hexdigest() for n in PRODUCTS[:-1])
    expected = direct_catalog("aegean", image_path, options, tmp_path / "direct")
    assert expected and json.loads(stored["catalog.json"])["sources"] == expected
    assert "command 2/2" in stored["job.log"].decode()  # BANE, then aegean


def test_preview_of_a_huge_image_is_decimated(tmp_path: Path) -> None:
    """The preview stays <= 2048 px whatever the image size (memory bounded by the preview)."""
    from matplotlib.image import imread

    from caesar_faas.catalog.preview import write_preview

    path = tmp_path / "big.fits"
    wcs = WCS(naxis=2)
    wcs.wcs.ctype, wcs.wcs.crval, wcs.wcs.cdelt = ["RA---SIN", "DEC--SIN"], [150.0, -30.0], [-1 / 3600, 1 / 3600]
    data = np.random.default_rng(1).standard_normal((2100, 3300)).astype(np.float32)
    fits.PrimaryHDU(data=data, header=wcs.to_header()).writeto(path)
    rows = [{"x": 100.0, "y": 200.0, "major": 10.0, "minor": 8.0, "pa": 30.0}, {"x": 5.0, "y": 5.0}]
    png = imread(write_preview(path, 0, rows, tmp_path / "preview.png"))
    # 3x3 blocks: a 700x1100 panel, plus the axes, the title and the colour bar (issue 15)
    assert max(png.shape[:2]) <= 2048 and png.shape[0] >= 700 and png.shape[1] >= 1100


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
