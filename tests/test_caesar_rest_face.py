"""The caesar-rest face's parts without a stack: the input naming rules, the shapes, the caesar
options of caesar-rest's configurator, the no-op options, the alias table."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from caesar_faas import caesar_rest
from caesar_faas.apps.registry import SpecError, get_app, load_spec
from caesar_faas.apps.validation import effective, ignored_given, validate_options
from caesar_faas.backends.base import handle_of
from caesar_faas.caesar_rest import inputs, shapes
from caesar_faas.errors import BadRequest
from caesar_faas.local import aliases
from tests.fixtures.jobs import IMAGE_APP, JobsEnv
from tests.test_apps_registry import GOOD, _write

FILE = "2f0b1c7e-0d6a-4c1e-9a55-6b3f0a1d2e44"
OTHER = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"

# Every option of caesar-rest's CaesarAppConfigurator (SKA-INAF/caesar-rest), by category.
CAESAR_REST_OPTIONS = """
save-fits save-inputmap save-bkgmap save-rmsmap save-significancemap save-residualmap save-saliencymap
save-segmentedmap save-regions save-summaryplot save-catalog-to-json convertregionstowcs regionwcs
read-subimg xmin xmax ymin ymax no-parallelmedian
bmaj bmin bpa mappixsize globalbkg bkgestimator bkgboxpix bkgbox bkggrid no-bkg2ndpass bkgskipoutliers
sourcebkgboxborder no-compactsearch npixmin seedthr mergethr compactsearchiters seedthrstep
selectsources no-boundingboxcut minboundingbox no-circratiocut circratiothr no-elongationcut elongationthr
ellipsearearatiocut ellipsearearatiominthr ellipsearearatiomaxthr maxnpixcut maxnpix no-nbeamscut nbeamsthr
no-nestedsearch blobmaskmethod nested-sourcetobeamthr nested-blobthr nested-minmotherdist
nested-maxmotherpixmatch nested-blobpeakzthr nested-blobpeakzthrmerge nested-blobminscale nested-blobmaxscale
nested-blobscalestep nested-blobkernfactor
fitsources fit-usethreads fit-minimizer fit-minimizeralgo fit-printlevel fit-strategy fit-maxnbeams
fit-maxcomponents fit-usenestedascomponents fit-freebkg fit-estimatedbkg fit-usebkgboxestimate fit-bkg
fit-ampllimit prefit-freeampl fit-sigmalimit fit-thetalimit fit-nobkglimits fit-noampllimits
fit-nosigmalimits fit-noposlimits fit-poslimit prefit-freepos fit-nothetalimits fit-fixsigma prefit-fixsigma
fit-fixtheta prefit-fixtheta fit-peakminkern fit-peakmaxkern fit-peakmultiplicitythr fit-peakshifttol
fit-peakzthrmin fit-fcntol fit-maxniters fit-noimproveconvergence fit-noretry fit-nretries
fit-parboundincreasestep fit-improveerrors fit-scaledatatomax fit-nochi2cut fit-chi2cut fit-useellipsecuts
computeresiduals res-removenested res-zthr res-zhighthr dilatekernsize res-removedsourcetype
res-pssubtractionmethod res-bkgaroundsource no-presmoothing smoothfilter guidedfilter-radius guidedfilter-eps
no-extendedsearch extsfinder activecontour
sp-size sp-beta sp-minarea saliency-nooptimalthr saliency-thr saliency-minreso saliency-maxreso
saliency-resostep saliency-nn saliency-usebkgmap saliency-usermsmap saliency-userobustpars
ac-niters ac-levelset ac-levelsetsize ac-tolerance cv-nitersinner cv-nitersreinit cv-timestep cv-wsize
cv-lambda1 cv-lambda2 cv-mu cv-nu cv-p wtscalemin wtscalemax
loglevel no-logredir no-mpi nproc nthreads tilesplit tilesize tilestep mergeedgesources no-mergesources
""".split()
NO_OPS = {"run", "envfile", "no-logredir", "no-mpi"}
README_JOB_INPUTS = {"run": True, "no-logredir": True, "envfile": "/home/riggi/Software/setvars.sh",
                     "no-mpi": True, "no-nestedsearch": True, "no-extendedsearch": True}


@pytest.mark.parametrize("value", [
    FILE, f"/opt/caesar-rest/data/{FILE}.fits", f"/opt/caesar-rest/data/alice/{FILE}.fits", f"{FILE}.fits",
    f"/mnt/storage/data/{FILE}.FITS", f"relative/{FILE}.fits.gz", f"/x/{FILE}.fts", f"C:/{FILE}.fit"])
def test_inputfile_names_an_upload_by_its_id(value):
    assert inputs.file_id(value, "inputfile") == FILE


@pytest.mark.parametrize("value", [
    "/etc/passwd", "/opt/caesar-rest/data/67a49bf7555b41739095681bf52a1f99.fits",  # caesar-rest's id form
    f"/x/{FILE}.png", f"/x/{FILE}", f"/x/{FILE}.fits/", f"{FILE}/../../etc/passwd", f"/x/{FILE}.fits\n",
    f"/x/{FILE}\x00.fits", f"/x/prefix-{FILE}.fits", "", 42, None, ["/x"], "/" * 5000 + f"{FILE}.fits"])
def test_other_inputfiles_are_refused(value):
    with pytest.raises(BadRequest) as err:
        inputs.file_id(value, "inputfile")
    assert err.value.extra["option"] == "inputfile" and err.value.code == "invalid_file"


def test_normalise_body():
    readme = {"app": "caesar", "job_inputs": {"inputfile": f"/opt/caesar-rest/data/{FILE}.fits", **README_JOB_INPUTS}}
    out = inputs.normalise_body(readme, "inputfile")
    assert out["job_inputs"] == {**README_JOB_INPUTS, "inputfile": FILE} and "data_inputs" not in out
    # mrcnn's describe names its input `image`: accepted too, kept as inputfile
    out = inputs.normalise_body({"app": "mrcnn", "job_inputs": {"image": f"/d/{FILE}.fits", "scoreThr": 0.5}}, "image")
    assert out["job_inputs"] == {"scoreThr": 0.5, "inputfile": FILE}
    out = inputs.normalise_body({"app": "sep", "data_inputs": f"/d/{FILE}.fits", "job_inputs": {}}, "image")
    assert out == {"app": "sep", "data_inputs": FILE, "job_inputs": {}}
    devel = {"app": "sep", "data_inputs": f"/d/{FILE}.fits", "is_data_inputs_uid": False, "job_inputs": {}}
    assert inputs.normalise_body(devel, "image") == {"app": "sep", "data_inputs": FILE, "job_inputs": {}}
    with pytest.raises(BadRequest, match="different files"):
        inputs.normalise_body({"app": "mrcnn", "job_inputs": {"image": FILE, "inputfile": OTHER}}, "image")
    assert inputs.normalise_body({"app": "x", "job_inputs": "no"}, "image") == {"app": "x", "job_inputs": "no"}


def test_value_formats():
    assert shapes.elapsed(None) == "0" and shapes.elapsed(27.3435878754) == "27.3435878754"
    assert shapes.elapsed(1.216) == "1.216" and shapes.elapsed(3) == "3"
    assert shapes.date(1587740666.5) == "2020-04-24T15:04:26.500000" and shapes.date(None) == ""
    assert shapes.exit_code({"exit_status": None}) == -1 and shapes.exit_code({"exit_status": 0}) == 0
    assert shapes.exit_code({"exit_status": True}) == -1


def test_pid_is_the_backend_handle_whatever_the_backend():
    assert handle_of({"pid": 11539, "pgid": 11539, "start_ticks": 5, "workdir": "/w"}) == "11539"  # local
    assert handle_of({"backend": "kubernetes", "namespace": "caesar-jobs", "name": "caesar-x", "uid": "u"}) \
        == "caesar-x"
    assert handle_of({"backend": "slurm", "job_id": 4242, "name": "caesar-x"}) == "4242"  # Slurm's numeric id
    assert handle_of({"backend": "future", "handle": "h-1", "name": "n"}) == "h-1"
    assert handle_of(None) == "" and handle_of({}) == "" and handle_of({"pid": None, "name": ""}) == ""


def test_status_shape_before_and_after_a_run():
    pending = {"id": FILE, "state": "PENDING", "status": "Submitted", "exit_status": None, "tag": None,
               "backend_ref": None, "started": None, "finished": None, "elapsed": None}
    assert shapes.status(pending, now=100.0) == {
        "job_id": FILE, "pid": "", "state": "PENDING", "status": "Submitted", "exit_status": -1, "exit_code": -1,
        "elapsed_time": "0", "tag": ""}
    done = {**pending, "state": "SUCCESS", "exit_status": 0, "elapsed": 27.3436, "backend_ref": {"pid": 7},
            "tag": "t"}
    view = shapes.status(done, now=100.0)
    assert view["pid"] == "7" and view["elapsed_time"] == "27.344" and view["exit_code"] == 0 and view["tag"] == "t"


def test_caesar_accepts_every_caesar_rest_option():
    spec = get_app("caesar")
    assert len(CAESAR_REST_OPTIONS) == len(set(CAESAR_REST_OPTIONS)) == 159
    assert set(CAESAR_REST_OPTIONS) | {"run", "envfile"} == set(spec.options)
    assert {name for name, opt in spec.options.items() if opt.ignored} == NO_OPS
    described = shapes.describe(spec)
    assert list(described)[0] == "inputfile" and described["inputfile"]["mandatory"] is True
    for name in NO_OPS:
        assert described[name]["description"].startswith("No effect here")
    # the README's example job: accepted, the no-ops reported and never passed to the finder
    options = effective(spec, validate_options(spec, README_JOB_INPUTS))
    assert not NO_OPS & set(options) and options["no-nestedsearch"] is True
    assert ignored_given(spec, README_JOB_INPUTS) == sorted(NO_OPS)
    # what this service cannot do is still refused, and so is anything unknown
    for bad in ({"run": False}, {"no-mpi": False}, {"envfile": 3}, {"nproc": 4}, {"no-such-option": True}):
        with pytest.raises(BadRequest):
            validate_options(spec, bad)


def test_describe_keeps_caesar_rest_three_shapes():
    described = shapes.describe(get_app("caesar"))
    flag, value, enum = described["fitsources"], described["seedthr"], described["bkgestimator"]
    assert set(flag) == {"mandatory", "type", "description", "advanced", "category", "subcategory", "default", "enum"}
    assert flag["type"] == "none" and flag["enum"] is False and flag["default"] is False and flag["advanced"] == 0
    assert set(value) == set(flag) | {"min", "max"} and value["type"] == "float"
    assert (value["default"], value["min"], value["max"]) == (5.0, 0.0, 10000.0)
    assert set(enum) == set(flag) | {"allowed_values"} and enum["enum"] is True
    assert enum["allowed_values"] == ["Mean", "Median", "BiWeight", "ClippedMedian"]
    unbounded = shapes.describe(get_app("aegean"))["maxsummits"]  # no default: caesar-rest's ''
    assert unbounded["default"] == "" and unbounded["max"] == 10000


def test_native_submit_reports_ignored_options_only_when_given(jobs_env: JobsEnv) -> None:
    jobs_env.settings = dataclasses.replace(jobs_env.settings, job_backend="kubernetes")
    file_id = jobs_env.add_file("alice")
    view = jobs_env.submit("alice", app=IMAGE_APP, data_inputs=file_id, job_inputs=README_JOB_INPUTS)
    assert view["ignored_options"] == sorted(NO_OPS)
    assert not NO_OPS & set(jobs_env.job(view["job_id"])["options"])
    plain = jobs_env.submit("alice", app=IMAGE_APP, data_inputs=file_id, job_inputs={"seedthr": 4.0})
    assert "ignored_options" not in plain  # the native shape is unchanged


def test_spec_components_key(tmp_path: Path):
    assert get_app("aegean").catalog_is_components({})
    pybdsf = get_app("pybdsf")
    assert pybdsf.catalog_is_components({"catalog_type": "gaul"})
    assert not pybdsf.catalog_is_components({"catalog_type": "srl"})
    assert not get_app("sep").catalog_is_components({})
    base = GOOD + "  quiet: {type: none, description: nothing, ignored: true}\n"
    assert load_spec(_write(tmp_path, base + "components: {level: DEBUG}\n")).components == {"level": "DEBUG"}
    for extra, message in (("components: {nope: a}", "unknown option"), ("components: {level: c}", "one of"),
                           ("components: 3", "must be true, false")):
        with pytest.raises(SpecError, match=message):
            load_spec(_write(tmp_path, base + extra + "\n"))
    with pytest.raises(SpecError, match="ignored option cannot be mandatory"):
        load_spec(_write(tmp_path, base.replace("ignored: true", "ignored: true, mandatory: true")))


def test_alias_table_targets_the_marker():
    assert aliases.MARK == caesar_rest.MARKER and aliases.PREFIX == caesar_rest.PREFIX
    expected = {
        "/upload": ("upload", "/caesar-rest"), "/fileids": ("files", "/caesar-rest/ids"),
        "/download": ("files", "/caesar-rest/download"), f"/download/{FILE}": ("files", f"/caesar-rest/download/{FILE}"),
        f"/delete/{FILE}": ("files", f"/caesar-rest/delete/{FILE}"), "/apps": ("describe", "/caesar-rest"),
        "/app/sep/describe": ("describe", "/caesar-rest/sep"), "/job": ("submit", "/caesar-rest"),
        f"/job/{FILE}/status": ("status", f"/caesar-rest/{FILE}"), f"/job/{FILE}/cancel": ("cancel", f"/caesar-rest/{FILE}"),
        f"/job/{FILE}/output": ("output", f"/caesar-rest/{FILE}"),
        f"/job/{FILE}/output-plot": ("output", f"/caesar-rest/{FILE}/output-plot"),
        "/jobs": ("jobs", "/caesar-rest"), "/accounting": ("accounting", "/"), "/appstats": ("accounting", "/apps"),
    }
    for path, target in expected.items():
        assert aliases.rewrite(aliases.PREFIX + path) == target, path
        assert aliases.rewrite(aliases.PREFIX + path + "/") == target, path
    assert aliases.rewrite(aliases.PREFIX + f"/job/{FILE}/secrets") is None


def test_docs_nginx_rules_are_the_alias_table():
    """docs/aliases.md's rewrite lines say what aliases.REWRITES says, line for line."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "aliases.md").read_text()
    rules = re.findall(r"rewrite \^/caesar/api/v1\.0(\S*?)/\?\$\s+/function/(\S+) break;", text)
    table = []
    for pattern, fn, target in aliases.REWRITES:
        path = "/".join(filter(None, (fn, re.sub(r"\\(\d)", r"$\1", target))))
        table.append((pattern, path))
    assert rules == table
