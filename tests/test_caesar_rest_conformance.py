"""caesar-rest drop-in: its README's Usage section replayed against the running stack.

Every curl of the section runs with the real `curl`, as written (line continuations joined, the
host and the example ids replaced by this stack's, a bearer token header added), and each answer's
status code, keys and value types are compared with the README's example answer. The routes the
section names without a curl (apps, describe, cancel, jobs) are called the same way. A second test
covers the routes caesar-rest's code adds (the product routes, the download form) on real jobs.

The stack runs the Kubernetes backend against the HTTP-level fake API server, with a fake node
that runs each Job's container command as a local process (tests/fixtures/kube_node.py): the
README submits a `caesar` job, which only a cluster backend accepts. The runner in the "pod" is
the real one; caesar itself is not installable here, so that job ends FAILURE with its log (its
answers keep their shapes); the code-only routes use real sep and aegean runs.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from openapi_schema_validator import OAS30Validator

from caesar_faas.ids import is_id
from tests.fixtures.k8s import kubernetes_stack
from tests.fixtures.kube_node import FakeNode
from tests.fixtures.stack import LocalStack
from tests.helpers import free_port, wait_for
from tests.openapi_doc import resolved
from tests.samples import fits_bytes
from tests.synth import make_image

USAGE = Path(__file__).parent / "data" / "caesar-rest-usage.md"
OPENAPI = yaml.safe_load((Path(__file__).resolve().parents[1] / "openapi.yaml").read_text())
UPSTREAM = Path("/work/shared/reference/caesar-rest-README.md")
README_HOST = "http://localhost:8080"
README_FILE_ID = "67a49bf7555b41739095681bf52a1f99"  # in the download and job examples
README_JOB_IDS = ("f135bcee-562b-4f01-ad9b-103c35b13b36", "c3c9348a-bea0-4141-8fe9-7f64076a2327")
TERMINAL = ("SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED")

# Keys an answer has beyond the README's example: the non-conflicting keys of caesar-rest's code
# and the ones the issue adds (docs/aliases.md lists them). Anything else is a failure.
EXTRA_KEYS = {
    "upload": {"tag"},
    "fileids": {"files"},
    "submit": {"data_inputs", "tag", "state", "ignored_options"},
    "status": {"exit_code", "tag"},
    "option": {"advanced", "category", "subcategory", "default", "min", "max", "enum", "allowed_values"},
}


@dataclass
class Section:
    title: str
    urls: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    curls: list[list[str]] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)


def parse_usage(text: str) -> dict[str, Section]:
    """The README's Usage subsections: their URLs, methods, curl commands and example answers."""
    parts = re.split(r"^### \*\*(.+?)\*\*[ \t]*$", text, flags=re.M)
    out = {}
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        section = Section(title)
        section.urls = re.findall(r"^\* URL:```(\S+?)```", body, flags=re.M)
        for found in re.findall(r"^\* Request methods: (.+)$", body, flags=re.M):
            section.methods.append(found.strip())
        body = re.sub(r"^\* .*$", "", body, flags=re.M)
        for block in re.findall(r"^```[ \t]*\n(.*?)^```", body, flags=re.M | re.S):
            if block.lstrip().startswith("curl"):
                joined = " ".join(line.rstrip().removesuffix("\\") for line in block.splitlines())
                section.curls.append(shlex.split(joined))
            else:
                section.answers.append(json.loads(block))
        out[title] = section
    return out


def same_shape(readme: Any, ours: Any, extra: set[str] = frozenset(), where: str = "$") -> None:
    """The README's keys are all there with the same JSON types; other keys only from `extra`."""
    assert type(ours) is type(readme), f"{where}: {type(ours).__name__} where the README has {type(readme).__name__}"
    if isinstance(readme, dict):
        missing = set(readme) - set(ours)
        assert not missing, f"{where}: keys missing: {sorted(missing)}"
        unexpected = set(ours) - set(readme) - set(extra)
        assert not unexpected, f"{where}: undocumented keys: {sorted(unexpected)}"
        for key in readme:
            same_shape(readme[key], ours[key], where=f"{where}.{key}")
    elif isinstance(readme, list) and readme:
        assert ours, f"{where}: empty where the README lists items"
        for i, item in enumerate(ours):
            same_shape(readme[0], item, where=f"{where}[{i}]")


def documented(method: str, url: str, code: int, body: bytes) -> None:
    """An alias answer is one openapi.yaml documents: its route, its status code, and (for JSON)
    a body valid against the alias's own schema."""
    path = "/" + url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
    routes = [p for p in OPENAPI["paths"] if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", p), path)]
    assert routes, f"{path} is not documented"
    responses = resolved(OPENAPI["paths"][max(routes, key=len)][method.lower()]["responses"])
    assert str(code) in responses, f"{method} {path} answered {code}, not documented"
    schema = (responses[str(code)].get("content") or {}).get("application/json", {}).get("schema")
    if schema is not None:
        OAS30Validator(schema).validate(json.loads(body))


def checked(session: requests.Session) -> requests.Session:
    """A client whose every answer from an alias route is checked against openapi.yaml."""
    def hook(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        if "/caesar/api/v1.0/" in resp.request.url:
            documented(resp.request.method, resp.request.url, resp.status_code, resp.content)
    session.hooks["response"].append(hook)
    return session


@dataclass
class Replay:
    code: int
    exit: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Curl:
    """Runs README curl lines against the stack, in a folder holding the README's input file."""

    def __init__(self, stack: LocalStack, token: str | None, cwd: Path) -> None:
        assert shutil.which("curl"), "these tests replay the README with the real curl: apt-get install curl (.ci/run does)"
        self.stack, self.token, self.cwd = stack, token, cwd
        self.ids: dict[str, str] = {}

    def run(self, argv: list[str], *, drop: tuple[str, ...] = ()) -> Replay:
        assert argv[0] == "curl"
        args = [self._substitute(a) for a in argv[1:]]
        for flag in drop:  # e.g. the README's "Without the -o argument ..." variant
            i = args.index(flag)
            del args[i:i + (2 if flag == "-o" else 1)]
        headers = self.cwd / "headers.txt"
        auth = ["-H", f"Authorization: Bearer {self.token}"] if self.token else []
        done = subprocess.run(["curl", "-sS", "-D", str(headers), *auth, *args], cwd=self.cwd, capture_output=True,
                              timeout=60)
        statuses = re.findall(r"^HTTP/[\d.]+ (\d{3})", headers.read_text(), flags=re.M) if headers.exists() else []
        headers.unlink(missing_ok=True)
        replay = Replay(int(statuses[-1]) if statuses else 0, done.returncode, done.stdout)
        url = next(args[i + 1] for i, a in enumerate(args) if a == "--url")
        method = next((args[i + 1] for i, a in enumerate(args) if a == "-X"), "GET")
        if replay.code and "-o" not in args:  # a saved body is checked by the test itself
            documented(method, url, replay.code, replay.body)
        return replay

    def _substitute(self, arg: str) -> str:
        arg = arg.replace(README_HOST, self.stack.url)
        for example, ours in self.ids.items():
            arg = arg.replace(example, ours)
        return arg


@pytest.fixture(scope="module")
def fake(module_fake_k8s):
    return module_fake_k8s


@pytest.fixture(scope="module")
def k8s_stack(tmp_path_factory, fake):
    with kubernetes_stack(fake, tmp_path_factory.mktemp("caesar-rest-stack")) as stack:
        yield stack


@pytest.fixture(scope="module")
def node(fake, k8s_stack, tmp_path_factory):
    running = FakeNode(fake, k8s_stack.nats_url, tmp_path_factory.mktemp("node")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def field_image(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("field") / "field.fits"
    make_image(str(path), size=256, n_sources=8, seed=12)
    return path.read_bytes()


def alias(stack: LocalStack, path: str) -> str:
    return f"{stack.url}/caesar/api/v1.0{path}"


def ended(client: requests.Session, stack: LocalStack, job_id: str, timeout: float = 180) -> dict[str, Any]:
    # plain requests, not the checked client: a schema failure must fail the test, not be retried
    url, headers = alias(stack, f"/job/{job_id}/status"), dict(client.headers)
    return wait_for(lambda: (v := requests.get(url, headers=headers).json())["state"] in TERMINAL and v,
                    timeout=timeout, interval=0.2, message=f"job {job_id} to end")


def test_usage_section_is_upstream_verbatim():
    if not UPSTREAM.exists():
        pytest.skip("no upstream copy of caesar-rest's README on this machine")
    upstream = UPSTREAM.read_text()
    assert USAGE.read_text().split("-->\n", 1)[1] == upstream[upstream.index("## **Usage**"):]


def test_readme_usage_replayed_with_curl(k8s_stack, node, field_image, tmp_path):
    sections = parse_usage(USAGE.read_text())
    assert sum(len(s.curls) for s in sections.values()) == 6  # every curl of the section is below
    token = k8s_stack.token("readme-user")
    client = checked(k8s_stack.client("readme-user"))
    (tmp_path / "VGPS_cont_MOS017.fits").write_bytes(field_image)
    curl = Curl(k8s_stack, token, tmp_path)

    # Data upload: 200 with the README's keys
    upload = sections["Data upload"]
    answer = curl.run(upload.curls[0])
    assert (answer.code, answer.exit) == (200, 0)
    same_shape(upload.answers[0], answer.json(), EXTRA_KEYS["upload"])
    uploaded = answer.json()
    assert uploaded["status"] == "File uploaded with success" and uploaded["filename_orig"] == "VGPS_cont_MOS017.fits"
    assert uploaded["format"] == "fits" and uploaded["size"] == len(field_image) / 2**20

    # Data download: the README's own id is not ours, so its curl first meets caesar-rest's 404 text
    download = sections["Data download"]
    missing = curl.run(download.curls[0])
    assert missing.exit == 22 and not (tmp_path / "data.fits").exists()  # --fail: nothing saved
    missing = curl.run(download.curls[0], drop=("--fail", "-o"))
    assert missing.code == 404 and missing.json() == download.answers[0]  # the README's text, its id
    curl.ids[README_FILE_ID] = uploaded["uuid"]
    saved = curl.run(download.curls[0])
    assert (saved.code, saved.exit) == (200, 0) and (tmp_path / "data.fits").read_bytes() == field_image

    # Get uploaded data ids
    fileids = sections["Get uploaded data ids"]
    answer = curl.run(fileids.curls[0])
    assert answer.code == 200
    same_shape(fileids.answers[0], answer.json(), EXTRA_KEYS["fileids"])
    assert answer.json()["file_ids"] == [uploaded["uuid"]]

    # App description: the two URLs, no curl in the README
    apps = sections["App description"]
    assert len(apps.urls) == 2 and apps.methods == ["GET", "GET"]
    listed = curl.run(["curl", "-X", "GET", "--url", apps.urls[0].replace("http://server-address:port", README_HOST)])
    assert listed.code == 200
    same_shape(apps.answers[0], listed.json())
    assert set(apps.answers[0]["apps"]) <= set(listed.json()["apps"])
    described = curl.run(["curl", "-X", "GET", "--url", apps.urls[1].replace("http://server-address:port", README_HOST)
                          .replace("[app_name]", "mrcnn")])  # the README's example answer is mrcnn's
    assert described.code == 200
    readme_options, options = apps.answers[1], described.json()
    assert set(readme_options) <= set(options)
    for name in readme_options:
        same_shape(readme_options[name], options[name], EXTRA_KEYS["option"], where=name)

    # Job submission: the README's caesar job, its inputfile a path ending in our upload's uuid
    submission = sections["Job submission"]
    answer = curl.run(submission.curls[0])
    assert answer.code == 202, answer.body
    same_shape(submission.answers[0], answer.json(), EXTRA_KEYS["submit"])
    job = answer.json()
    assert job["status"] == "Job submitted with success" and job["app"] == "caesar" and is_id(job["job_id"])
    assert job["job_inputs"] == {**submission.answers[0]["job_inputs"], "inputfile": uploaded["uuid"]}
    assert job["data_inputs"] == uploaded["uuid"] and job["state"] == "PENDING"
    assert job["ignored_options"] == ["envfile", "no-logredir", "no-mpi", "run"]
    for example in README_JOB_IDS:
        curl.ids[example] = job["job_id"]

    # Get job status, once the Job's pod has run
    final = ended(client, k8s_stack, job["job_id"])
    status = sections["Get job status"]
    answer = curl.run(status.curls[0])
    assert answer.code == 200
    same_shape(status.answers[0], answer.json(), EXTRA_KEYS["status"])
    view = answer.json()
    assert view == final and view["job_id"] == job["job_id"]
    assert view["pid"] == f"caesar-{job['job_id']}"  # the Kubernetes Job's name
    assert view["state"] in ("STARTED", "TIMED-OUT", "ABORTED", "RUNNING", "SUCCESS", "FAILURE")
    assert float(view["elapsed_time"]) > 0 and view["exit_status"] == view["exit_code"] != -1
    assert "caesar" in view["status"]  # caesar is not in this runner: the status says so

    # Get job output: the tar.gz of the job's folder
    output = sections["Get job output"]
    saved = curl.run(output.curls[0])
    assert (saved.code, saved.exit) == (200, 0)
    with tarfile.open(tmp_path / "job_output.tar.gz") as tar:
        names = tar.getnames()
    assert f"job_{job['job_id']}/job.log" in names and f"job_{job['job_id']}/manifest.json" in names

    # Cancel job: POST, no curl in the README; a finished job gets caesar-rest's second text
    cancel = sections["Cancel job"]
    assert cancel.methods == ["POST"]
    url = cancel.urls[0].replace("http://server-address:port", README_HOST).replace("[job_id]", job["job_id"])
    answer = curl.run(["curl", "-X", "POST", "--url", url])
    assert answer.code == 200 and answer.json() == {
        "status": f"Job {job['job_id']} already completed with state {view['state']}, nothing to be canceled."}

    # Get job ids
    jobs = sections["Get job ids"]
    assert jobs.methods == ["GET"]
    answer = curl.run(["curl", "-X", "GET", "--url", jobs.urls[0].replace("http://server-address:port", README_HOST)])
    assert answer.code == 200 and answer.json()["job_ids"] == [job["job_id"]]
    entry = answer.json()["jobs"][0]
    assert {k: entry[k] for k in ("job_id", "app", "state", "pid", "elapsed_time", "exit_code", "tag")} == {
        "job_id": job["job_id"], "app": "caesar", "state": view["state"], "pid": view["pid"],
        "elapsed_time": view["elapsed_time"], "exit_code": view["exit_code"], "tag": ""}
    assert entry["scheduler"] == "kubernetes" and entry["job_inputs"] == job["job_inputs"]


def test_code_only_routes_on_real_jobs(k8s_stack, node, fake, field_image):
    client = checked(k8s_stack.client("coder"))
    upload = client.post(alias(k8s_stack, "/upload"), files={"file": ("field.fits", field_image)}, data={"tag": "t1"})
    assert upload.status_code == 200 and upload.json()["tag"] == "t1"
    file_id = upload.json()["uuid"]

    # GET /download?uuid= and POST /download with the form field: 302 to /download/<id>
    for resp in (client.get(alias(k8s_stack, "/download"), params={"uuid": file_id}, allow_redirects=False),
                 client.post(alias(k8s_stack, "/download"), data={"uuid": file_id}, allow_redirects=False),
                 client.post(alias(k8s_stack, "/download"), files={"uuid": (None, file_id)}, allow_redirects=False)):
        assert resp.status_code == 302 and resp.headers["Location"] == f"/caesar/api/v1.0/download/{file_id}"
    followed = client.post(alias(k8s_stack, "/download"), data={"uuid": file_id})
    assert followed.status_code == 200 and followed.content == field_image  # requests re-sends as GET
    assert client.post(alias(k8s_stack, f"/download/{file_id}")).content == field_image
    assert "attachment" in client.get(alias(k8s_stack, f"/download/{file_id}")).headers["Content-Disposition"]

    jobs = {}
    for app, inputs in (("sep", {"thresh": 5.0}), ("aegean", {})):
        resp = client.post(alias(k8s_stack, "/job"), json={"app": app, "data_inputs": file_id, "job_inputs": inputs})
        assert resp.status_code == 202, resp.text
        assert resp.json()["ignored_options"] == []
        jobs[app] = resp.json()["job_id"]
    for app, job_id in jobs.items():
        view = ended(client, k8s_stack, job_id)
        assert view["state"] == "SUCCESS", (app, view, node.log(f"caesar-{job_id}"))
        assert view["exit_status"] == 0 and view["pid"] == f"caesar-{job_id}"

    for app, job_id in jobs.items():
        sources = client.get(alias(k8s_stack, f"/job/{job_id}/sources"))
        assert sources.status_code == 200 and sources.headers["Content-Type"].startswith("application/json")
        found = sources.json()["sources"]
        assert len(found) >= 6, (app, len(found))  # eight sources in the image
        table = client.get(alias(k8s_stack, f"/job/{job_id}/output-sources"))
        assert table.status_code == 200 and "attachment" in table.headers["Content-Disposition"]
        assert len(table.text.strip().splitlines()) == len(found) + 1  # a header line and one per source
        preview = client.get(alias(k8s_stack, f"/job/{job_id}/preview"))
        assert preview.status_code == 200 and preview.json()["status"] == ""
        png = base64.b64decode(preview.json()["image"])
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        plot = client.get(alias(k8s_stack, f"/job/{job_id}/output-plot"))
        assert plot.status_code == 200 and plot.content == png and plot.headers["Content-Type"] == "image/png"
        with tarfile.open(fileobj=io.BytesIO(client.get(alias(k8s_stack, f"/job/{job_id}/output")).content)) as tar:
            assert f"job_{job_id}/catalog.json" in tar.getnames()

    # fitted components: aegean fits one Gaussian per component; sep fits nothing
    components = client.get(alias(k8s_stack, f"/job/{jobs['aegean']}/source-components"))
    assert components.status_code == 200
    assert components.json() == client.get(alias(k8s_stack, f"/job/{jobs['aegean']}/sources")).json()
    assert client.get(alias(k8s_stack, f"/job/{jobs['aegean']}/output-components")).status_code == 200
    for route in ("source-components", "output-components"):
        resp = client.get(alias(k8s_stack, f"/job/{jobs['sep']}/{route}"))
        assert resp.status_code == 404 and set(resp.json()) == {"status"}
        assert "no fitted-component catalogue" in resp.json()["status"]

    # a job still in the cluster's queue: 202 with caesar-rest's text, then cancel (GET works too)
    node.paused = True
    try:
        job_id = client.post(alias(k8s_stack, "/job"), json={"app": "sep", "data_inputs": file_id,
                                                               "job_inputs": {}}).json()["job_id"]
        wait_for(lambda: fake.job(f"caesar-{job_id}") is not None, timeout=60, message="the Job")
        for route in ("output", "sources", "preview", "output-plot"):
            resp = client.get(alias(k8s_stack, f"/job/{job_id}/{route}"))
            assert resp.status_code == 202 and resp.json()["job_id"] == job_id
            assert re.fullmatch(rf"Job {job_id} not yet completed \(state=(PENDING|STARTED)\), output not available",
                                resp.json()["status"])
        resp = client.get(alias(k8s_stack, f"/job/{job_id}/cancel"))
        assert resp.status_code == 200 and resp.json() == {"status": "Job canceled and status updated in DB"}
        assert client.post(alias(k8s_stack, f"/job/{job_id}/cancel")).json() == resp.json()  # idempotent
        assert client.get(alias(k8s_stack, f"/job/{job_id}/status")).json()["state"] == "ABORTED"
        wait_for(lambda: fake.job(f"caesar-{job_id}") is None, timeout=60, message="the Job to be deleted")
    finally:
        node.paused = False

    # unknown ids answer caesar-rest's texts
    ghost = "0b7c3e36-7f6e-4a39-9f34-4b6d5d8d2f10"
    assert client.get(alias(k8s_stack, f"/job/{ghost}/status")).json() == {
        "job_id": ghost, "pid": "", "state": "", "status": f"Job {ghost} not found for user coder!"}
    for path in (f"/job/{ghost}/output", f"/job/{ghost}/cancel", f"/job/{ghost}/preview"):
        resp = client.get(alias(k8s_stack, path))
        assert resp.status_code == 404 and resp.json() == {"status": f"Job {ghost} not found for user coder!"}
    resp = client.get(alias(k8s_stack, "/app/nosuchapp/describe"))
    assert resp.status_code == 400 and resp.json() == {"status": "Unknown app nosuchapp!"}

    # delete (GET and POST), then the file is gone for every route
    assert client.get(alias(k8s_stack, f"/delete/{file_id}")).json() == {"status": "File deleted and removed from DB"}
    for method in ("get", "post"):
        resp = getattr(client, method)(alias(k8s_stack, f"/delete/{file_id}"))
        assert resp.status_code == 404
        assert resp.json() == {"status": f"File with uuid {file_id} not found on the system!"}
    assert file_id not in client.get(alias(k8s_stack, "/fileids")).json()["file_ids"]


def test_marker_grants_nothing(k8s_stack, node):
    """The alias face is only a path: no token is 401 everywhere, another user's things are 404,
    a path names only one's own upload and is never opened, and the marked function path answers
    exactly like the alias."""
    alice, bob = checked(k8s_stack.client("alice-cr")), checked(k8s_stack.client("bob-cr"))
    file_id = alice.post(alias(k8s_stack, "/upload"), files={"file": ("a.fits", fits_bytes(seed=4))}).json()["uuid"]
    job = alice.post(alias(k8s_stack, "/job"), json={"app": "sep", "data_inputs": file_id, "job_inputs": {}}).json()
    for method, path in (("post", "/upload"), ("get", "/fileids"), ("get", f"/download/{file_id}"),
                         ("get", f"/delete/{file_id}"), ("get", "/apps"), ("get", "/app/sep/describe"),
                         ("post", "/job"), ("get", f"/job/{job['job_id']}/status"), ("get", "/jobs"),
                         ("get", f"/job/{job['job_id']}/sources"), ("post", f"/job/{job['job_id']}/cancel")):
        resp = getattr(requests, method)(alias(k8s_stack, path))
        assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers, path
    for path in (f"/download/{file_id}", f"/delete/{file_id}", f"/job/{job['job_id']}/status",
                 f"/job/{job['job_id']}/output", f"/job/{job['job_id']}/sources", f"/job/{job['job_id']}/cancel"):
        assert bob.get(alias(k8s_stack, path)).status_code == 404, path
    assert file_id not in bob.get(alias(k8s_stack, "/fileids")).json()["file_ids"]
    assert job["job_id"] not in bob.get(alias(k8s_stack, "/jobs")).json()["job_ids"]
    for inputfile in (f"/opt/caesar-rest/data/{file_id}.fits", "/etc/passwd", f"/opt/x/{file_id}.png",
                      f"{file_id}/../../etc/passwd", f"/etc/{file_id}.fits\n"):
        resp = bob.post(alias(k8s_stack, "/job"), json={"app": "sep", "job_inputs": {"inputfile": inputfile}})
        assert resp.status_code == 400, inputfile
        assert resp.json()["state"] == "ABORTED" and resp.json()["option"] == "inputfile"
    marked = alice.get(f"{k8s_stack.url}/function/status/caesar-rest/{job['job_id']}").json()
    assert marked.keys() == alice.get(alias(k8s_stack, f"/job/{job['job_id']}/status")).json().keys()


def test_readme_curls_unchanged_with_auth_off(tmp_path_factory, field_image, tmp_path):
    """CAESAR_AUTH=off (loopback only): a caesar-rest script runs as it was, without a token."""
    stack = LocalStack(tmp_path_factory.mktemp("auth-off"), free_port(), free_port(),
                       extra_env={"CAESAR_AUTH": "off"})
    stack.start()
    try:
        sections = parse_usage(USAGE.read_text())
        (tmp_path / "VGPS_cont_MOS017.fits").write_bytes(field_image)
        curl = Curl(stack, None, tmp_path)
        uploaded = curl.run(sections["Data upload"].curls[0])
        assert uploaded.code == 200
        same_shape(sections["Data upload"].answers[0], uploaded.json(), EXTRA_KEYS["upload"])
        curl.ids[README_FILE_ID] = uploaded.json()["uuid"]
        assert curl.run(sections["Data download"].curls[0]).exit == 0
        assert (tmp_path / "data.fits").read_bytes() == field_image
        listed = curl.run(sections["Get uploaded data ids"].curls[0])
        assert listed.code == 200 and listed.json()["file_ids"] == [uploaded.json()["uuid"]]
        refused = curl.run(sections["Job submission"].curls[0])  # caesar needs a cluster backend
        assert refused.code == 400 and refused.json()["state"] == "ABORTED" and refused.json()["option"] == "app"
        assert "kubernetes" in refused.json()["status"]
    finally:
        stack.stop()
