"""The UWS 1.1 face on the running local stack, driven with plain HTTP the way pyvo's AsyncTAPJob
does: every document validates against UWS-1.1.xsd and parses with pyvo; the same jobs are
visible through /function/jobs; the blocking GET, destruction, execution duration, owner
scoping, parameter errors and the URL inputfile."""

from __future__ import annotations

import http.server
import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from astropy.io.votable import parse_single_table
from pyvo.io.uws import parse_job, parse_job_list

from tests.fixtures.stack import LocalStack
from tests.helpers import free_port, wait_for
from tests.synth import make_image
from tests.uws_schema import assert_valid

FINAL = {"COMPLETED", "ERROR", "ABORTED"}


@pytest.fixture(scope="module")
def uws_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One stack for the module; it may fetch inputfile URLs from loopback (the test server)."""
    s = LocalStack(tmp_path_factory.mktemp("uws"), free_port(), free_port(),
                   extra_env={"CAESAR_FETCH_PRIVATE_URLS": "1"})
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uws-images")
    make_image(str(folder / "field.fits"), size=192, n_sources=6, seed=3)
    make_image(str(folder / "nobeam.fits"), size=96, n_sources=1, seed=4, header_beam=False)
    return {"field": folder / "field.fits", "nobeam": folder / "nobeam.fits"}


def upload(stack: LocalStack, client: requests.Session, path: Path) -> str:
    with open(path, "rb") as fh:
        resp = client.post(stack.url + "/function/upload", files={"file": (path.name, fh)}, timeout=60)
    assert resp.status_code == 201, resp.text
    return resp.json()["uuid"]


@pytest.fixture(scope="module")
def alice(uws_stack: LocalStack) -> requests.Session:
    return uws_stack.client("alice")


@pytest.fixture(scope="module")
def field_id(uws_stack: LocalStack, alice: requests.Session, images: dict[str, Path]) -> str:
    return upload(uws_stack, alice, images["field"])


def jobs_url(stack: LocalStack, app: str = "sep") -> str:
    return f"{stack.url}/function/uws/{app}/jobs"


def create(stack: LocalStack, client: requests.Session, data: dict[str, str] | list, app: str = "sep") -> str:
    resp = client.post(jobs_url(stack, app), data=data, allow_redirects=False, timeout=60)
    assert resp.status_code == 303, resp.text
    assert resp.headers["Location"].startswith(jobs_url(stack, app) + "/")
    return resp.headers["Location"]


def job_doc(client: requests.Session, url: str, **query: str):
    resp = client.get(url, params=query, timeout=90)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/xml"), resp.text
    assert_valid(resp.content)
    return parse_job(io.BytesIO(resp.content)), resp


def wait_final(client: requests.Session, url: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job, _ = job_doc(client, url, WAIT="30")
        if job.phase in FINAL:
            return job
    raise AssertionError(f"{url} did not end in {timeout} s")


def test_a_whole_job_the_way_pyvo_drives_it(uws_stack, alice, field_id):
    # create: a POST of form parameters, 303 to the new job (pyvo follows it)
    resp = alice.post(jobs_url(uws_stack), data={"inputfile": field_id, "thresh": "5", "runid": "pyvo-style"},
                      timeout=60)
    assert resp.status_code == 200 and resp.url != jobs_url(uws_stack)
    url = resp.url
    assert_valid(resp.content)
    job = parse_job(io.BytesIO(resp.content))
    assert job.phase == "PENDING" and job.runid == "pyvo-style" and job.ownerid == "alice"
    # the job waits for PHASE=RUN: nothing starts it
    assert alice.get(url + "/phase", timeout=30).text == "PENDING"
    # run, then the blocking wait pyvo's wait() does (WAIT=-1: as long as the service allows)
    ran = alice.post(url + "/phase", data={"PHASE": "RUN"}, allow_redirects=False, timeout=30)
    assert ran.status_code == 303 and ran.headers["Location"] == url
    job = wait_final(alice, url)
    assert job.phase == "COMPLETED", job.errorsummary
    assert job.starttime is not None and job.endtime is not None and job.destruction is not None
    # results: one per product, signed URLs, sizes and media types; the catalogue is "result"
    resp = alice.get(url + "/results", timeout=30)
    assert_valid(resp.content)
    ids = [r.id_ for r in job.results]
    assert ids[0] == "result" and {"catalog.csv", "catalog.json", "sources.reg", "preview.png", "job.log",
                                   "manifest.json"} <= set(ids)
    result = job.results[0]
    assert int(result.size) > 0 and b'mime-type="application/x-votable+xml"' in resp.content
    # fetch the VOTable through its URL alone (no token: the URL is signed)
    votable = requests.get(result.href, timeout=30)
    assert votable.status_code == 200 and int(result.size) == len(votable.content)
    table = parse_single_table(io.BytesIO(votable.content)).to_table()
    assert len(table) >= 4 and "ra" in table.colnames
    # the same job through the native API
    native = alice.get(f"{uws_stack.url}/function/status/{job.jobid}", timeout=30).json()
    assert native["state"] == "SUCCESS" and native["tag"] == "pyvo-style" and native["app"] == "sep"
    listed = [j["job_id"] for j in alice.get(uws_stack.url + "/function/jobs", timeout=30).json()["jobs"]]
    assert job.jobid in listed
    # delete: 303 to the job list, then gone from the UWS face
    gone = alice.delete(url, allow_redirects=False, timeout=30)
    assert gone.status_code == 303 and gone.headers["Location"] == jobs_url(uws_stack)
    missing = alice.get(url, timeout=30)
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("text/plain")
    assert job.jobid not in [j.jobid for j in list_jobs(alice, uws_stack)]


def list_jobs(client: requests.Session, stack: LocalStack, query: list | None = None, app: str = "sep"):
    resp = client.get(jobs_url(stack, app), params=query or [], timeout=30)
    assert resp.status_code == 200, resp.text
    assert_valid(resp.content)
    return list(parse_job_list(io.BytesIO(resp.content)))


def test_native_jobs_are_uws_jobs_and_the_list_filters(uws_stack, alice, field_id):
    native = alice.post(uws_stack.url + "/function/submit", timeout=30,
                        json={"app": "sep", "data_inputs": field_id, "job_inputs": {"minarea": 6}, "tag": "native"})
    assert native.status_code == 202, native.text
    native_id = native.json()["job_id"]
    held = create(uws_stack, alice, {"INPUTFILE": field_id}).rsplit("/", 1)[1]
    job = wait_final(alice, f"{jobs_url(uws_stack)}/{native_id}")
    assert job.phase == "COMPLETED" and job.runid == "native"
    assert ("minarea", "6") in [(p.id_, p.content) for p in job.parameters]
    everything = [j.jobid for j in list_jobs(alice, uws_stack)]
    assert everything.index(held) < everything.index(native_id)  # newest first
    assert [j.jobid for j in list_jobs(alice, uws_stack, [("PHASE", "PENDING")])] == \
        [j for j in everything if j == held or j in pending_ids(alice, uws_stack)]
    completed = [j.jobid for j in list_jobs(alice, uws_stack, [("PHASE", "COMPLETED")])]
    assert native_id in completed and held not in completed
    both = [j.jobid for j in list_jobs(alice, uws_stack, [("PHASE", "PENDING"), ("phase", "COMPLETED")])]
    assert held in both and native_id in both
    assert [j.jobid for j in list_jobs(alice, uws_stack, [("LAST", "1")])] == [everything[0]]
    # creationTime is shown to the millisecond: a millisecond later is after the native job
    created = job.creationtime.datetime.replace(tzinfo=UTC) + timedelta(milliseconds=1)
    after = [j.jobid for j in list_jobs(alice, uws_stack, [("AFTER", created.isoformat())])]
    assert held in after and native_id not in after
    assert list_jobs(alice, uws_stack, app="aegean") == [] or native_id not in \
        [j.jobid for j in list_jobs(alice, uws_stack, app="aegean")]
    bad = alice.get(jobs_url(uws_stack), params={"PHASE": "SLEEPING"}, timeout=30)
    assert bad.status_code == 400 and "PHASE" in bad.text and bad.headers["Content-Type"].startswith("text/plain")


def pending_ids(client: requests.Session, stack: LocalStack) -> set[str]:
    return {j["job_id"] for j in client.get(stack.url + "/function/jobs", params={"state": "PENDING"},
                                             timeout=30).json()["jobs"]}


def test_case_insensitive_parameters_reach_the_job(uws_stack, alice, field_id):
    url = create(uws_stack, alice, [("InputFile", field_id), ("THRESH", "6.5"), ("MinArea", "4"),
                                    ("Clean", "false"), ("Phase", "run")])
    resp = alice.get(url + "/parameters", timeout=30)
    assert_valid(resp.content)
    job = wait_final(alice, url)
    values = {p.id_: p.content for p in job.parameters}
    assert values["thresh"] == "6.5" and values["minarea"] == "4" and values["clean"] == "false"
    assert values["inputfile"] == field_id
    native = alice.get(f"{uws_stack.url}/function/status/{job.jobid}", timeout=30).json()
    assert native["job_inputs"] == {"thresh": 6.5, "minarea": 4, "clean": False}


@pytest.mark.parametrize(("data", "named"), [
    ({"thresh": "high"}, "thresh"),
    ({"Thresh": "0.1"}, "thresh"),  # below the spec's min: named by the validation
    ({"nosuchoption": "1"}, "nosuchoption"),
    ({"filter_kernel": "gauss"}, "filter_kernel"),
])
def test_a_bad_parameter_is_a_400_naming_it(uws_stack, alice, field_id, data, named):
    before = len(list_jobs(alice, uws_stack))
    resp = alice.post(jobs_url(uws_stack), data={"inputfile": field_id, **data}, allow_redirects=False, timeout=30)
    assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("text/plain")
    assert named in resp.text.lower()
    assert len(list_jobs(alice, uws_stack)) == before  # nothing stored


def test_missing_or_foreign_inputfile_is_refused(uws_stack, alice, field_id):
    for data in ({"thresh": "5"}, {"inputfile": "00000000-0000-4000-8000-000000000000"}):
        resp = alice.post(jobs_url(uws_stack), data=data, allow_redirects=False, timeout=30)
        assert resp.status_code == 400 and "inputfile" in resp.text, resp.text
    bob = uws_stack.client("bob")
    resp = bob.post(jobs_url(uws_stack), data={"inputfile": field_id}, allow_redirects=False, timeout=30)
    assert resp.status_code == 400 and "inputfile" in resp.text


def test_another_users_job_is_404_everywhere(uws_stack, alice, field_id):
    url = create(uws_stack, alice, {"inputfile": field_id})
    bob = uws_stack.client("bob")
    for sub in ("", "/phase", "/parameters", "/results", "/error", "/owner", "/destruction"):
        resp = bob.get(url + sub, timeout=30)
        assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("text/plain"), sub
    assert bob.post(url + "/phase", data={"PHASE": "RUN"}, timeout=30).status_code == 404
    assert bob.delete(url, timeout=30).status_code == 404
    assert url.rsplit("/", 1)[1] not in [j.jobid for j in list_jobs(bob, uws_stack)]
    assert alice.get(url + "/phase", timeout=30).text == "PENDING"  # untouched
    assert alice.get(url + "/owner", timeout=30).text == "alice"
    other_app = alice.get(url.replace("/uws/sep/", "/uws/aegean/"), timeout=30)
    assert other_app.status_code == 404


def test_no_token_is_a_401_in_text_and_vosi_is_public(uws_stack):
    resp = requests.get(jobs_url(uws_stack), timeout=30)
    assert resp.status_code == 401 and resp.headers["Content-Type"].startswith("text/plain")
    assert "Bearer" in resp.headers.get("WWW-Authenticate", "")
    avail = requests.get(f"{uws_stack.url}/function/uws/sep/availability", timeout=30)
    assert avail.status_code == 200 and b"<vosi:available>true</vosi:available>" in avail.content
    caps = requests.get(f"{uws_stack.url}/function/uws/sep/capabilities", timeout=30)
    assert caps.status_code == 200 and jobs_url(uws_stack).encode() in caps.content
    assert requests.get(f"{uws_stack.url}/function/uws/nosuchapp/availability", timeout=30).status_code == 404


def test_wait_returns_at_the_limit_when_nothing_changes(uws_stack, alice, field_id):
    url = create(uws_stack, alice, {"inputfile": field_id})
    started = time.monotonic()
    job, _ = job_doc(alice, url, WAIT="2")
    assert job.phase == "PENDING" and time.monotonic() - started >= 2.0
    # PHASE names a phase the job is not in: the answer is immediate (no wait for a change)
    started = time.monotonic()
    job, _ = job_doc(alice, url, WAIT="50", PHASE="EXECUTING")
    assert job.phase == "PENDING" and time.monotonic() - started < 50


def test_wait_returns_early_on_a_phase_change(uws_stack, alice, field_id):
    url = create(uws_stack, alice, {"inputfile": field_id})
    runner = threading.Timer(1.0, lambda: alice.post(url + "/phase", data={"PHASE": "RUN"}, timeout=30))
    runner.start()
    try:
        started = time.monotonic()
        job, _ = job_doc(alice, url, WAIT="55", PHASE="PENDING")
        assert job.phase != "PENDING" and time.monotonic() - started < 55  # before the limit
    finally:
        runner.join()
    wait_final(alice, url)


def test_destruction_and_execution_duration(uws_stack, alice, field_id):
    url = create(uws_stack, alice, {"inputfile": field_id})
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    refused = alice.post(url + "/destruction", data={"DESTRUCTION": past}, allow_redirects=False, timeout=30)
    assert refused.status_code == 400 and "past" in refused.text
    soon = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    ok = alice.post(url + "/destruction", data={"destruction": soon.strftime("%Y-%m-%dT%H:%M:%SZ")},
                    allow_redirects=False, timeout=30)
    assert ok.status_code == 303 and ok.headers["Location"] == url
    shown = alice.get(url + "/destruction", timeout=30).text
    assert datetime.fromisoformat(shown.replace("Z", "+00:00")) == soon
    native = alice.get(f"{uws_stack.url}/function/status/{url.rsplit('/', 1)[1]}", timeout=30).json()
    assert datetime.fromisoformat(native["expires"].replace("Z", "+00:00")) == soon  # one truth
    far = alice.post(url + "/destruction", data={"DESTRUCTION": "2999-01-01T00:00:00Z"}, timeout=30)
    assert far.status_code == 200  # accepted, lowered to what the service keeps
    assert alice.get(url + "/destruction", timeout=30).text < "2999"
    assert alice.post(url + "/executionduration", data={"EXECUTIONDURATION": "120"},
                      allow_redirects=False, timeout=30).status_code == 303
    assert alice.get(url + "/executionduration", timeout=30).text == "120"
    alice.post(url + "/executionduration", data={"EXECUTIONDURATION": "0"}, timeout=30)
    assert alice.get(url + "/executionduration", timeout=30).text == "86400"  # 0: the caller's maximum
    bad = alice.post(url + "/executionduration", data={"EXECUTIONDURATION": "soon"}, timeout=30)
    assert bad.status_code == 400 and "EXECUTIONDURATION" in bad.text
    job, _ = job_doc(alice, url)
    assert int(job.executionduration.value) == 86400


def test_abort_and_post_action_delete(uws_stack, alice, field_id):
    url = create(uws_stack, alice, {"inputfile": field_id})
    assert alice.post(url + "/phase", data={"PHASE": "ABORT"}, allow_redirects=False, timeout=30).status_code == 303
    job, _ = job_doc(alice, url)
    assert job.phase == "ABORTED" and job.errorsummary is None
    assert alice.post(url + "/phase", data={"PHASE": "SUSPEND"}, timeout=30).status_code == 400
    gone = alice.post(url, data={"ACTION": "DELETE"}, allow_redirects=False, timeout=30)
    assert gone.status_code == 303 and gone.headers["Location"] == jobs_url(uws_stack)
    assert alice.get(url, timeout=30).status_code == 404


def test_a_failed_job_is_an_error_with_its_summary(uws_stack, alice, images):
    file_id = upload(uws_stack, alice, images["nobeam"])  # sep needs a beam: a usage error
    url = create(uws_stack, alice, {"inputfile": file_id, "PHASE": "RUN"})
    job = wait_final(alice, url)
    assert job.phase == "ERROR" and job.errorsummary.type_ == "fatal"
    assert "beam" in job.errorsummary.message.content.lower()
    detail = alice.get(url + "/error", timeout=30)
    assert detail.status_code == 200 and detail.headers["Content-Type"].startswith("text/plain")
    assert "usage" in detail.text and "job.log" in [r.id_ for r in job.results]
    assert alice.get(url + "/results/job.log", allow_redirects=False, timeout=30).status_code == 303


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


def test_inputfile_as_a_url_is_fetched_into_storage(uws_stack, alice, images):
    folder = images["field"].parent
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Files(*a, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        source = f"http://127.0.0.1:{server.server_port}/field.fits"
        url = create(uws_stack, alice, {"inputfile": source, "phase": "RUN"})
        job = wait_final(alice, url)
        assert job.phase == "COMPLETED"
        file_id = {p.id_: p.content for p in job.parameters}["inputfile"]
        record = alice.get(f"{uws_stack.url}/function/files/{file_id}", timeout=30).json()
        assert record["filename_orig"] == "field.fits" and record["bytes"] == images["field"].stat().st_size
        missing = alice.post(jobs_url(uws_stack), data={"inputfile": source.replace("field", "nofile")},
                             allow_redirects=False, timeout=30)
        assert missing.status_code == 400 and "404" in missing.text
    finally:
        server.shutdown()
        thread.join()


def test_the_job_document_is_valid_in_every_phase_seen(uws_stack, alice, field_id):
    """Poll a job from creation to the end: each document seen validates."""
    url = create(uws_stack, alice, {"inputfile": field_id, "PHASE": "RUN"})
    phases = []

    def ended() -> bool:
        job, _ = job_doc(alice, url)
        if not phases or phases[-1] != job.phase:
            phases.append(job.phase)
        return job.phase in FINAL

    wait_for(ended, timeout=300, interval=0.05, message="the job to end")
    assert phases[-1] == "COMPLETED" and set(phases) <= {"QUEUED", "EXECUTING", "COMPLETED"}


def test_the_readme_pyvo_example(uws_stack, field_id):
    """README "Virtual Observatory": pyvo's own UWS client drives a job and reads the catalogue."""
    from pyvo.dal import AsyncTAPJob

    token = uws_stack.token("alice")

    class Bearer(requests.auth.AuthBase):
        def __call__(self, r):
            if r.url.startswith(uws_stack.url + "/function/"):
                r.headers["Authorization"] = f"Bearer {token}"
            return r

    session = requests.Session()
    session.auth = Bearer()
    created = session.post(jobs_url(uws_stack), data={"inputfile": field_id, "thresh": "5", "RUNID": "m31"},
                           timeout=60)
    job = AsyncTAPJob(created.url, session=session)
    job.run().wait(timeout=300)
    job.raise_if_error()
    assert job.phase == "COMPLETED" and job.uws_version == "1.1"
    sources = job.fetch_result().to_table()
    assert len(sources) >= 4 and str(sources["ra"].unit) == "deg"
    assert {r.id_ for r in job.results} >= {"result", "catalog.csv", "sources.reg", "manifest.json"}
    job.delete()
    assert session.get(created.url, timeout=30).status_code == 404
