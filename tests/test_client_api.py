"""caesar_client.Client against the real local stack (every method), its settings, its retries
(against a scripted HTTP server), the typed errors, a resumed upload and wait through long-poll."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from caesar_client import (
    BadRequest,
    Client,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidFile,
    JobFailed,
    NotFound,
    ServerError,
    Unauthorized,
    WaitTimeout,
)
from caesar_client.config import read_config, resolve, write_config

from tests.fixtures.client import INLINE_LIMIT, PART_SIZE
from tests.fixtures.stack import LocalStack
from tests.helpers import free_port
from tests.samples import fits_bytes
from tests.synth import make_image


@pytest.fixture
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CAESAR_URL", "CAESAR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


@pytest.fixture
def api(client_stack: LocalStack, user_dirs: Path) -> Client:
    return Client(client_stack.url, client_stack.token("pyuser"), progress=False)


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api-images") / "field.fits"
    make_image(str(path), size=256, n_sources=10, seed=33)
    return path


# ---- settings ----

def test_settings_order_argument_environment_config_file(user_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve().url == "http://127.0.0.1:8080" and resolve().token is None
    path = write_config({"url": "http://saved:1/", "token": "saved-token"})
    assert path == user_dirs / "config" / "caesar" / "config.toml"
    assert path.stat().st_mode & 0o777 == 0o600 and read_config() == {"url": "http://saved:1/", "token": "saved-token"}
    assert (resolve().url, resolve().token) == ("http://saved:1", "saved-token")
    monkeypatch.setenv("CAESAR_URL", "http://env:2")
    monkeypatch.setenv("CAESAR_TOKEN", "env-token")
    assert (resolve().url, resolve().token) == ("http://env:2", "env-token")
    client = Client("http://arg:3", "arg-token")
    assert (client.url, client.token, client.token_source) == ("http://arg:3", "arg-token", "argument")
    # A token with quotes and backslashes survives the file (TOML basic string).
    write_config({"url": "http://x", "token": 'a"b\\c'})
    assert read_config()["token"] == 'a"b\\c'


# ---- retries, against a scripted server ----

class Scripted(http.server.ThreadingHTTPServer):
    """Answers each request with the next (status, body) of `script`; counts requests."""

    def __init__(self, script: list[tuple[int, dict]]) -> None:
        self.script = list(script)
        self.count = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer.count += 1
                status, body = outer.script.pop(0) if outer.script else (200, {"apps": []})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    servers: list[Scripted] = []

    def make(script: list[tuple[int, dict]]) -> Scripted:
        server = Scripted(script)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_retries_on_502_503_504_then_succeeds(scripted) -> None:
    server = scripted([(502, {}), (503, {"error": "unavailable", "status": "busy"}), (504, {}),
                       (200, {"apps": ["sep"]})])
    assert Client(server.url, "t", retries=4, backoff=0.01).apps() == ["sep"]
    assert server.count == 4


def test_gives_up_after_the_retries(scripted) -> None:
    server = scripted([(503, {"error": "unavailable", "status": "try later"})] * 10)
    with pytest.raises(ServerError) as failed:
        Client(server.url, "t", retries=2, backoff=0.01).apps()
    assert server.count == 3 and failed.value.status == 503 and failed.value.code == "unavailable"


@pytest.mark.parametrize(("status", "kind"), [(400, BadRequest), (401, Unauthorized), (403, Forbidden),
                                              (404, NotFound), (409, Conflict), (500, ServerError)])
def test_never_retries_4xx_or_500(scripted, status: int, kind: type) -> None:
    server = scripted([(status, {"error": "some_code", "status": "what went wrong", "option": "minarea"})])
    with pytest.raises(kind) as failed:
        Client(server.url, "t", retries=4, backoff=0.01).apps()
    assert server.count == 1
    assert (failed.value.status, failed.value.code, failed.value.option) == (status, "some_code", "minarea")
    assert "what went wrong" in str(failed.value)


def test_connection_errors_are_retried_then_typed() -> None:
    with pytest.raises(ConnectionFailed, match="cannot reach"):
        Client(f"http://127.0.0.1:{free_port()}", "t", retries=2, backoff=0.01).apps()


# ---- every method against the stack ----

def test_health_openapi_whoami(api: Client) -> None:
    assert api.health()
    assert "/function/upload/{file_id}:" in api.openapi()
    who = api.whoami()
    assert who["user"] == "pyuser" and who["roles"] == ["user"] and who["token_source"] == "argument"


def test_files_methods(api: Client, field: Path, tmp_path: Path) -> None:
    ids = [api.upload(field, tag="api-files")["uuid"] for _ in range(3)]
    listed = list(api.files(tag="api-files", page_size=1))  # three pages
    assert [f["uuid"] for f in listed] == ids[::-1]
    assert [f["uuid"] for f in api.files(tag="api-files", page_size=2, limit=2)] == ids[:0:-1]
    assert set(ids) <= set(api.file_ids())
    record = api.file(ids[0])
    assert record["filename_orig"] == "field.fits" and record["state"] == "ready"
    target = api.download(ids[0], tmp_path)
    assert target == tmp_path / "field.fits" and target.read_bytes() == field.read_bytes()
    assert api.upload_state(ids[0])["state"] == "ready"  # a finished upload answers its record
    assert api.delete(ids[0])["uuid"] == ids[0]
    with pytest.raises(NotFound) as missing:
        api.file(ids[0])
    assert missing.value.status == 404 and missing.value.code


def test_upload_chooses_inline_or_presigned_by_the_server_limit(api: Client, tmp_path: Path) -> None:
    limits = api.upload_limits()
    assert limits["max_inline_upload"] == INLINE_LIMIT and limits["part_size"] == PART_SIZE
    small, big = tmp_path / "small.fits", tmp_path / "big.fits"
    small.write_bytes(fits_bytes((100, 100), seed=1))
    big.write_bytes(fits_bytes((1200, 1200), seed=2))  # 5.8 MB: two parts
    inline = api.upload(small)
    presigned = api.upload(big, tag="large")
    assert "presigned" not in inline and inline["state"] == "ready"
    assert presigned["presigned"] and presigned["parts_sent"] == 2 and presigned["resumed"] == 0
    assert presigned["state"] == "ready" and presigned["tag"] == "large"
    assert presigned["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    forced = api.upload(small, presigned=True)  # one presigned PUT
    assert forced["presigned"] and forced["parts_sent"] == 1 and forced["state"] == "ready"


def test_interrupted_presigned_upload_resumes(api: Client, tmp_path: Path) -> None:
    image = tmp_path / "resume.fits"
    image.write_bytes(fits_bytes((1800, 1800), seed=4))  # 13 MB: three parts of 5 MiB
    data = image.read_bytes()

    class Interrupted(Exception):
        pass

    def stop(number: int) -> None:
        raise Interrupted(number)

    with pytest.raises(Interrupted):
        api.upload(image, workers=1, on_part=stop)
    file_id = api.resume_book.recall(api.url, image)
    assert file_id
    state = api.upload_state(file_id)
    received = [p["number"] for p in state["received"]]
    assert state["state"] == "pending" and 1 in received and len(received) < 3
    assert [p["number"] for p in state["multipart"]["parts"]] == [n for n in (1, 2, 3) if n not in received]

    record = api.upload(image, workers=1)
    assert record["uuid"] == file_id and record["state"] == "ready"
    assert record["resumed"] == len(received) and record["parts_sent"] == 3 - len(received)
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert api.resume_book.recall(api.url, image) is None
    assert (api.download(file_id, tmp_path / "back.fits")).read_bytes() == data


def test_upload_of_a_non_fits_file_is_typed(api: Client, tmp_path: Path) -> None:
    text = tmp_path / "notes.fits"
    text.write_bytes(b"SIMPLE? no, this is not FITS at all" * 10)
    with pytest.raises(InvalidFile) as refused:
        api.upload(text)
    assert refused.value.status in (415, 422)


def test_apps_describe(api: Client) -> None:
    assert {"sep", "aegean", "pybdsf"} <= set(api.apps())
    assert api.describe("sep")["thresh"]["type"] == "float"
    with pytest.raises(NotFound):
        api.describe("nope")


def test_jobs_lifecycle_methods(api: Client, field: Path, tmp_path: Path) -> None:
    job = api.submit("sep", field, {"thresh": 6}, tag="api-jobs")  # a local path: uploaded first
    assert job["state"] == "PENDING" and job["job_inputs"] == {"thresh": 6}
    updates: list[tuple[str, int]] = []
    requests_seen: list[str] = []
    api.http.session.hooks["response"].append(lambda answer, *a, **k: requests_seen.append(answer.request.url))
    started = time.monotonic()
    final = api.wait(job["job_id"], timeout=300, on_update=lambda j: updates.append((j["state"], j["progress"])))
    elapsed = time.monotonic() - started
    assert final["state"] == "SUCCESS" and updates[-1] == ("SUCCESS", 100)
    polls = [url for url in requests_seen if "/function/status/" in url]
    # Long-poll: after the first, every request names what the client knows and is held by the
    # server until it changes, so there is one request per change (plus one per 30 s held).
    assert all("wait=" in url and "state=" in url and "progress=" in url for url in polls[1:])
    assert len(polls) == len(updates)
    assert len(polls) <= len(set(updates)) + 1 + int(elapsed // 25)

    assert api.status(job["job_id"])["state"] == "SUCCESS"
    assert api.status(job["job_id"], wait=5, state="SUCCESS")["state"] == "SUCCESS"  # terminal: no hold
    products = {p["name"]: p for p in api.products(job["job_id"])}
    assert {"catalog.csv", "job.log", "manifest.json"} <= set(products) and products["catalog.csv"]["sha256"]
    one = api.download_product(job["job_id"], "catalog.csv", tmp_path / "one")
    assert hashlib.sha256(one.read_bytes()).hexdigest() == products["catalog.csv"]["sha256"]
    every = api.download_outputs(job["job_id"], tmp_path / "all")
    assert {p.name for p in every} == set(products)
    assert api.log(job["job_id"]).strip()
    listed = list(api.jobs(app="sep", tag="api-jobs", state="SUCCESS", page_size=1))
    assert [j["job_id"] for j in listed] == [job["job_id"]]
    assert list(api.jobs(app="aegean", tag="api-jobs")) == []
    with pytest.raises(Conflict):
        api.cancel(job["job_id"])  # already finished


def test_failed_job_and_wait_errors(api: Client, tmp_path: Path) -> None:
    plain = tmp_path / "plain.fits"
    plain.write_bytes(fits_bytes((64, 48), seed=3))  # no beam: sep cannot run on it
    job = api.submit("sep", api.upload(plain)["uuid"])
    with pytest.raises(JobFailed) as failed:
        api.wait(job["job_id"], timeout=300, raise_on_failure=True)
    assert failed.value.job["state"] == "FAILURE" and failed.value.job["error_class"] == "usage"


def test_cancel_and_wait_timeout(api: Client, tmp_path: Path) -> None:
    big = tmp_path / "slow.fits"
    make_image(str(big), size=1024, n_sources=30, seed=5)
    job = api.submit("aegean", big)
    with pytest.raises(WaitTimeout):
        api.wait(job["job_id"], timeout=1)
    assert api.cancel(job["job_id"])["state"] == "ABORTED"
    assert api.wait(job["job_id"])["state"] == "ABORTED"


def test_option_errors_are_typed_with_the_option(api: Client, field: Path) -> None:
    file_id = api.upload(field)["uuid"]
    with pytest.raises(BadRequest) as refused:
        api.submit("sep", file_id, {"minarea": "5"})
    assert refused.value.code == "invalid_option" and refused.value.option == "minarea"


def test_401_and_403_are_typed(client_stack: LocalStack, user_dirs: Path) -> None:
    with pytest.raises(Unauthorized) as no_token:
        list(Client(client_stack.url, None).files())
    assert no_token.value.status == 401
    with pytest.raises(Unauthorized):
        Client(client_stack.url, "not-a-token").apps()
    with pytest.raises(Forbidden):
        Client(client_stack.url, client_stack.token("pyuser")).app_stats()


def test_accounting_methods(api: Client, client_stack: LocalStack, user_dirs: Path) -> None:
    mine = api.accounting()
    assert {"usage", "limits"} <= set(mine)
    admin = Client(client_stack.url, client_stack.token("root", ("admin",)))
    assert "apps" in admin.app_stats()
    assert admin.accounting(user="pyuser")["limits"] == mine["limits"]
    assert admin.set_limits("pyuser", queued_jobs=7)["limits"]["queued_jobs"] == 7
    assert admin.limits("pyuser")["limits"]["queued_jobs"] == 7
    admin.set_limits("pyuser", queued_jobs=None)
    assert api.accounting()["limits"]["queued_jobs"] == mine["limits"]["queued_jobs"]
    assert os.environ.get("CAESAR_TOKEN") is None
