"""Issue 4 end to end, through HTTP on the local stack: a 2048x2048 synthetic image with 300
sources goes through aegean, pybdsf and sep jobs; each catalogue recovers the truth and equals
what the finder gives when run directly with the same options."""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import tarfile
import time

import pytest
from astropy.io.votable import parse_single_table
from regions import Regions

from caesar_faas.apps.registry import get_app
from caesar_faas.apps.validation import validate_options
from caesar_faas.jobs.states import ORDER, TERMINAL, rank
from tests.synth import make_image, match

APPS = ("aegean", "pybdsf", "sep")
PRODUCTS = {"catalog.csv", "catalog.vot", "catalog.json", "sources.reg", "preview.png", "job.log", "manifest.json"}


def follow(client, url, job_ids, timeout=900):
    """For each job, the (state, progress) points seen by polling all of them together until
    every one has ended, and its last view."""
    seen: dict[str, list] = {job_id: [] for job_id in job_ids}
    last: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job_id in job_ids:
            if job_id in last and last[job_id]["state"] in TERMINAL:
                continue
            view = last[job_id] = client.get(f"{url}/function/status/{job_id}", timeout=30).json()
            point = (view["state"], view["progress"])
            if not seen[job_id] or seen[job_id][-1] != point:
                seen[job_id].append(point)
        if all(view["state"] in TERMINAL for view in last.values()) and len(last) == len(job_ids):
            return seen, last
        time.sleep(0.1)
    raise AssertionError(f"jobs did not finish in {timeout}s; seen {seen}")


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    path = tmp_path_factory.mktemp("field") / "field.fits"
    truth = make_image(str(path), size=2048, n_sources=300, seed=7)
    return path, truth


@pytest.fixture(scope="module")
def finished(stack, field):
    """Upload once, submit the three jobs together, follow them all."""
    path, _ = field
    client = stack.client("astro")
    with open(path, "rb") as fh:
        upload = client.post(stack.url + "/function/upload", files={"file": ("field.fits", fh)}, timeout=120)
    assert upload.status_code == 201, upload.text
    file_id = upload.json()["uuid"]
    submitted = {}
    for app in APPS:
        resp = client.post(stack.url + "/function/submit", timeout=30,
                           json={"app": app, "job_inputs": {}, "data_inputs": file_id, "tag": "e2e"})
        assert resp.status_code == 202, resp.text
        body = resp.json()
        assert body["state"] == "PENDING" and body["app"] == app and body["data_inputs"] == file_id
        for key in ("job_id", "submit_date", "job_inputs", "tag", "status"):
            assert key in body
        submitted[app] = body["job_id"]
    seen, last = follow(client, stack.url, list(submitted.values()))
    return {app: (job_id, seen[job_id], last[job_id],
                  client.get(f"{stack.url}/function/output/{job_id}", timeout=120))
            for app, job_id in submitted.items()}


@pytest.mark.parametrize("app", APPS)
def test_job_reaches_success_in_order(finished, app):
    _, seen, view, _ = finished[app]
    assert view["state"] == "SUCCESS", view
    assert view["exit_status"] == 0 and view["progress"] == 100 and view["elapsed_time"] > 0
    states = [s for s, _ in seen]
    assert [rank(s) for s in states] == sorted(rank(s) for s in states), seen
    assert set(states) - set(ORDER) == {"SUCCESS"}
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and len(set(progress)) >= 3, seen


@pytest.mark.parametrize("app", APPS)
def test_archive_holds_every_product_readable(finished, app, tmp_path):
    job_id, _, _, archive = finished[app]
    assert archive.status_code == 200 and archive.headers["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers()}
        assert PRODUCTS <= names
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / job_id
    table = parse_single_table(str(folder / "catalog.vot")).to_table()
    assert str(table["ra"].unit) == "deg" and len(table) > 0
    regions = Regions.read(str(folder / "sources.reg"), format="ds9")
    assert len(regions) == len(table)
    manifest = json.loads((folder / "manifest.json").read_text())
    sizes = {m["name"]: m["size"] for m in manifest}
    for name in PRODUCTS - {"manifest.json"}:
        assert sizes[name] == (folder / name).stat().st_size


def catalog_of(stack, job_id):
    resp = stack.client("astro").get(f"{stack.url}/function/output/{job_id}/catalog.json", timeout=30)
    assert resp.status_code == 200
    return resp.json()["sources"]


@pytest.mark.parametrize("app", APPS)
def test_catalog_recovers_the_truth(stack, finished, field, app):
    _, truth = field
    sources = catalog_of(stack, finished[app][0])
    result = match(sources, truth, radius_pix=2.0)
    assert result.recovered_fraction(truth, min_snr=10) >= 0.99, result.missed_above(truth, 10)
    assert result.spurious_fraction <= 0.01, [sources[i] for i in result.spurious]


@pytest.mark.parametrize("app", APPS)
def test_catalog_equals_a_direct_run(stack, finished, field, app, tmp_path):
    path, _ = field
    spec = get_app(app)
    served_doc = stack.client("astro").get(f"{stack.url}/function/output/{finished[app][0]}/catalog.json").json()
    options = served_doc["provenance"]["options"]  # exactly what the job ran with
    assert options == validate_options(spec, {})  # an empty job_inputs means the defaults
    adapter = importlib.import_module(f"caesar_faas.runner.finders.{spec.local_entry}")
    image = tmp_path / "field.fits"
    image.write_bytes(path.read_bytes())
    for argv in adapter.argv(str(image), options, str(tmp_path)):
        subprocess.run(argv, cwd=tmp_path, check=True, capture_output=True,
                       env={**__import__("os").environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                            "MPLBACKEND": "Agg"})
    direct = adapter.read_catalog(str(tmp_path), str(image), options)
    served = catalog_of(stack, finished[app][0])
    assert len(served) == len(direct)
    key = ("ra", "dec", "peak_flux", "int_flux")
    for a, b in zip(sorted(served, key=lambda r: (r["ra"], r["dec"])),
                    sorted(direct, key=lambda r: (r["ra"], r["dec"])), strict=True):
        for name in key:
            if b[name] is None:
                assert a[name] is None
            else:
                assert a[name] == pytest.approx(b[name], rel=1e-6, abs=1e-12), (name, a, b)
