"""The UWS face without a stack: every document shape validates against UWS-1.1.xsd and parses
with pyvo; phases, parameter typing and the URL-fetch policy."""

from __future__ import annotations

import io

import pytest
import xmlschema
from pyvo.io.uws import parse_job, parse_job_list

from caesar_faas.apps.registry import get_app
from caesar_faas.errors import BadRequest
from caesar_faas.uws import documents, fetch, params, phases
from caesar_faas.uws.documents import ErrorView, JobView, ResultView
from tests.uws_schema import assert_valid

NOW = "2026-01-02T03:04:05.678Z"


def job_view(**changes) -> JobView:
    fields = dict(job_id="00000000-0000-4000-8000-000000000001", href="http://gw/function/uws/sep/jobs/x",
                  run_id="run <&> 1", owner="alice", phase="PENDING", created=NOW, started=None, ended=None,
                  execution_duration=600, destruction=None, quote=None,
                  parameters=[("thresh", "5.0"), ("inputfile", "00000000-0000-4000-8000-000000000002")],
                  results=[], error=None, info=[("state", "PENDING"), ("status", "waiting & <ok>")])
    fields.update(changes)
    return JobView(**fields)


RESULTS = [ResultView("result", "http://gw/storage/o/a?sig=1&expires=2", 1234, "application/x-votable+xml"),
           ResultView("manifest.json", "http://gw/storage/o/m?sig=2", None, "application/json")]
CASES = {
    "pending": job_view(),
    "executing": job_view(phase="EXECUTING", started=NOW, quote=NOW, run_id=None),
    "completed": job_view(phase="COMPLETED", started=NOW, ended=NOW, destruction=NOW, results=RESULTS),
    "error": job_view(phase="ERROR", started=NOW, ended=NOW, destruction=NOW,
                      error=ErrorView("fatal", "the image has no beam"), results=RESULTS[1:]),
    "no parameters": job_view(parameters=[], info=[]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_job_document_is_valid_uws_and_parses_with_pyvo(case):
    view = CASES[case]
    doc = documents.job_document(view)
    assert_valid(doc)
    job = parse_job(io.BytesIO(doc))
    assert job.version == "1.1" and job.jobid == view.job_id and job.phase == view.phase
    assert job.ownerid == "alice" and job.runid == view.run_id
    assert int(job.executionduration.value) == 600
    assert [(p.id_, p.content) for p in job.parameters] == list(view.parameters)
    # (pyvo 1.9 reads no mime-type: it looks for an attribute "mimetype"; the schema checks ours)
    assert [(r.id_, r.href, int(r.size or 0)) for r in job.results] == \
        [(r.result_id, r.href, r.size or 0) for r in view.results]  # pyvo reads a missing size as 0
    if view.error:
        assert job.errorsummary.type_ == "fatal" and job.errorsummary.message.content == view.error.message
    else:
        assert job.errorsummary is None


def test_job_list_results_and_parameters_documents_are_valid():
    views = [CASES["pending"], CASES["completed"], job_view(job_id="j3", run_id=None)]
    doc = documents.jobs_document(views)
    assert_valid(doc)
    parsed = parse_job_list(io.BytesIO(doc))
    assert [(j.jobid, j.phase) for j in parsed] == [(v.job_id, v.phase) for v in views]
    for doc in (documents.jobs_document([]), documents.results_document(RESULTS), documents.results_document([]),
                documents.parameters_document([("a", "1"), ("b", "x y")])):
        assert_valid(doc)


def test_the_schema_refuses_a_broken_document():
    """The validation is real: a job without its required results element fails."""
    doc = documents.job_document(CASES["pending"]).replace(b"<uws:results />", b"")
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        assert_valid(doc)


def test_vosi_documents_are_well_formed():
    import xml.etree.ElementTree as ET

    avail = ET.fromstring(documents.availability_document(False, "store down"))
    assert avail.tag == f"{{{documents.VOSI_AVAILABILITY_NS}}}availability"
    assert avail.find(f"{{{documents.VOSI_AVAILABILITY_NS}}}available").text == "false"
    caps = documents.capabilities_document("http://gw/function/uws/sep", "sep", "SEP")
    assert b'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"' in caps  # for xsi:type="vs:ParamHTTP"
    root = ET.fromstring(caps)
    urls = [e.text for e in root.iter("accessURL")]
    assert urls == ["http://gw/function/uws/sep/capabilities", "http://gw/function/uws/sep/availability",
                    "http://gw/function/uws/sep/jobs"]


@pytest.mark.parametrize(("record", "phase"), [
    ({"state": "PENDING", "hold": True}, "PENDING"),
    ({"state": "PENDING"}, "QUEUED"),
    ({"state": "PENDING", "hold": False}, "QUEUED"),
    ({"state": "STARTED"}, "EXECUTING"),
    ({"state": "RUNNING"}, "EXECUTING"),
    ({"state": "SUCCESS"}, "COMPLETED"),
    ({"state": "FAILURE"}, "ERROR"),
    ({"state": "TIMED-OUT"}, "ERROR"),
    ({"state": "ABORTED"}, "ABORTED"),
])
def test_states_map_to_phases(record, phase):
    assert phases.phase_of(record) == phase


def test_error_types_follow_the_error_class():
    assert phases.error_type({"error_class": "system"}) == "transient"
    assert phases.error_type({"error_class": "usage"}) == "fatal"
    assert phases.error_type({"error_class": "timeout"}) == "fatal"


def test_creation_parameters_are_case_insensitive_and_typed():
    spec = get_app("sep")
    asked = params.creation(spec, [("InputFile", "abc"), ("THRESH", "4"), ("minArea", "7"), ("Clean", "FALSE"),
                                   ("filter_kernel", "beam"), ("phase", "run"), ("RunId", "r1"),
                                   ("executionDuration", "60")])
    assert asked.options == {"thresh": 4.0, "minarea": 7, "clean": False, "filter_kernel": "beam"}
    assert (asked.inputfile, asked.run, asked.runid, asked.execution_duration) == ("abc", True, "r1", 60)
    assert params.creation(spec, [("inputfile", "x")]).run is False


@pytest.mark.parametrize(("pairs", "named"), [
    ([("inputfile", "x"), ("minarea", "7.5")], "minarea"),
    ([("inputfile", "x"), ("Thresh", "five")], "Thresh"),
    ([("inputfile", "x"), ("thresh", "nan")], "thresh"),
    ([("inputfile", "x"), ("clean", "maybe")], "clean"),
    ([("inputfile", "x"), ("nosuch", "1")], "nosuch"),
    ([("inputfile", "x"), ("image", "y")], "image"),
    ([("inputfile", "x"), ("PHASE", "ABORT")], "PHASE"),
    ([("inputfile", "x"), ("thresh", "4"), ("THRESH", "5")], "THRESH"),
    ([("thresh", "4")], "inputfile"),
    ([("inputfile", "x"), ("executionduration", "-1")], "executionduration"),
    ([("inputfile", "x"), ("destruction", "tomorrow")], "destruction"),
])
def test_bad_creation_parameters_name_the_parameter(pairs, named):
    with pytest.raises(BadRequest) as caught:
        params.creation(get_app("sep"), pairs)
    assert caught.value.extra["option"] == named and named in caught.value.message


def test_times_are_read_as_utc():
    assert params.parse_time("D", "2026-01-02T03:04:05Z") == params.parse_time("D", "2026-01-02T03:04:05")
    assert params.parse_time("D", "2026-01-02T04:04:05+01:00") == params.parse_time("D", "2026-01-02T03:04:05Z")


@pytest.mark.parametrize("url", ["http://127.0.0.1/x.fits", "http://localhost/x.fits", "http://10.1.2.3/x.fits",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/x.fits"])
def test_urls_to_private_addresses_are_refused_by_default(url):
    with pytest.raises(BadRequest) as caught:
        fetch.check_target(url, allow_private=False)
    assert caught.value.extra["option"] == "inputfile"
    fetch.check_target(url, allow_private=True)  # a local stack may allow them


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x.fits", "http://user:pw@example.org/x",
                                 "gopher://x"])
def test_only_plain_http_urls_are_fetched(url):
    with pytest.raises(BadRequest):
        fetch.check_target(url, allow_private=True)
