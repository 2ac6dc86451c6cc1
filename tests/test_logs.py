"""Structured logs (issue 17 §1) at the library level: JSON lines with the bound context, the
console format, masking of secrets, the access middleware and its request ids, the request id in
CloudEvents and the connector's calls, and the user's job.log text."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
from pathlib import Path

import pytest

from caesar_faas import logs
from caesar_faas.connector.delivery import request_for
from caesar_faas.events.cloudevents import binary_headers, encode, from_http, make_event
from caesar_faas.logs.access import AccessLog
from caesar_faas.logs.redact import Redactor
from caesar_faas.runner.joblog import user_text


@contextlib.contextmanager
def configured(component: str, **kwargs):
    """configure() for a block; the process's own handlers, level and context come back after."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    logs.clear()  # what earlier tests bound in this thread (a service clears per request)
    try:
        logs.configure(component, **kwargs)
        yield
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
        logs.clear()


@pytest.fixture
def captured(monkeypatch):
    """configure() writing to a buffer."""
    monkeypatch.setenv("CAESAR_JWT_SECRET", "a-very-secret-jwt-key-123")
    buffer = io.StringIO()
    with configured("testing", stream=buffer, log_dir=""):
        yield buffer


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_line_is_one_json_object_with_the_bound_context(captured):
    logs.bind(request_id="req-1", user="alice", job_id="j-1", file_id=None)
    logging.getLogger("caesar.test").info("stdlib line %s", "formatted", extra={"app": "sep"})
    logs.get_logger("caesar.test").warning("structlog line", bytes=12)
    done = threading.Event()
    threading.Thread(target=lambda: (logging.getLogger("caesar.thread").info("other thread"), done.set())).start()
    assert done.wait(10)
    first, second, third = lines(captured)
    assert first["event"] == "stdlib line formatted" and first["level"] == "info" and first["logger"] == "caesar.test"
    assert (first["request_id"], first["user"], first["job_id"], first["app"]) == ("req-1", "alice", "j-1", "sep")
    assert "file_id" not in first and first["function"] == "testing"
    assert first["ts"].endswith("Z") and first["ts"][10] == "T"
    assert list(first)[:4] == ["ts", "level", "event", "logger"]
    assert second["level"] == "warning" and second["bytes"] == 12 and second["request_id"] == "req-1"
    assert third["function"] == "testing" and "request_id" not in third  # threads do not inherit a request


def test_exceptions_stay_on_one_line(captured):
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("caesar.test").exception("it failed")
    (line,) = lines(captured)
    assert line["level"] == "error" and "ValueError: bad value" in line["exception"]


def test_secrets_are_masked_in_every_line(captured):
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLWFsaWNl"
    log = logging.getLogger("caesar.test")
    log.info("header Authorization: Bearer %s", jwt)
    log.info("presigned https://minio:9000/caesar/k?X-Amz-Credential=AKIA/x&X-Amz-Signature=deadbeef went out")
    log.info("signed http://127.0.0.1:8080/storage/o/files/a?expires=1&sig=abcdef0123")
    log.info("db mongodb://caesar:hunter2@mongo:27017/caesar and smtps://mail:pw@mail.example.org")
    log.info("bus nats://s3cr3tnatstoken0123@127.0.0.1:4222")
    log.info("the configured secret a-very-secret-jwt-key-123 leaked")
    logs.get_logger("caesar.test").info("fields", token=jwt, webhook_secret="xyz", authorization="Bearer abc")
    text = captured.getvalue()
    for leaked in (jwt, "deadbeef", "AKIA", "abcdef0123", "hunter2", ":pw@", "a-very-secret-jwt-key-123", '"xyz"',
                   "s3cr3tnatstoken0123"):
        assert leaked not in text, leaked
    assert "https://minio:9000/caesar/k?[redacted]" in text and "mongodb://[redacted]@mongo" in text
    assert all(isinstance(line, dict) for line in lines(captured))


def test_redactor_leaves_ordinary_text_alone():
    redactor = Redactor(secrets=[])
    assert redactor.text("job 1234 finished: SUCCESS (7 sources)") == "job 1234 finished: SUCCESS (7 sources)"
    assert redactor.text("GET http://gw/function/files") == "GET http://gw/function/files"


def test_console_format_is_coloured_text(monkeypatch):
    monkeypatch.setenv("CAESAR_LOG_FORMAT", "console")
    buffer = io.StringIO()
    with configured("testing", stream=buffer, log_dir=""):
        logging.getLogger("caesar.test").warning("for a developer")
    out = buffer.getvalue()
    assert "for a developer" in out and "\x1b[" in out and not out.lstrip().startswith("{")


def test_configure_writes_the_component_file_too(tmp_path):
    with configured("runner", stream=io.StringIO(), log_dir=tmp_path):
        logging.getLogger("caesar.test").info("to the file")
    (line,) = [json.loads(x) for x in (tmp_path / "runner.log").read_text().splitlines()]
    assert line["event"] == "to the file" and line["function"] == "runner"


def _app(body_chunks, status="200 OK"):
    def app(environ, start_response):
        logs.bind(user="bob")  # what http.authenticated does
        logging.getLogger("caesar.handler").info("inside the request")
        start_response(status, [("Content-Type", "text/plain"), ("X-Request-Id", "forged")])
        return iter(body_chunks)
    return app


def _call(app, path="/function/status/5d7c3a1e-0b9f-4c2d-8e6a-1f2b3c4d5e6f", query="wait=3&token=abc",
          request_id=None):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query}
    if request_id is not None:
        environ["HTTP_X_REQUEST_ID"] = request_id
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    body = app(environ, start_response)
    data = b"".join(body)
    body.close()
    return seen, data


def test_access_line_per_request_with_a_valid_or_new_request_id(captured):
    app = AccessLog(_app([b"abc", b"defg"]), function="gateway")
    seen, data = _call(app, request_id="client-id-42")
    assert data == b"abcdefg" and seen["headers"]["X-Request-Id"] == "client-id-42"
    inside, access = lines(captured)
    assert inside["request_id"] == "client-id-42" and inside["function"] == "status"
    assert inside["job_id"] == "5d7c3a1e-0b9f-4c2d-8e6a-1f2b3c4d5e6f"
    assert access["logger"] == "caesar.access" and access["event"] == "request"
    assert (access["method"], access["path"], access["status"], access["bytes"], access["user"]) == (
        "GET", "/function/status/5d7c3a1e-0b9f-4c2d-8e6a-1f2b3c4d5e6f", 200, 7, "bob")
    assert access["duration_ms"] >= 0 and access["request_id"] == "client-id-42"
    assert "token" not in json.dumps(access) and "wait" not in json.dumps(access)

    for bad in ("", "x" * 200, "a b", "id\nforged: line", "../etc"):
        seen, _ = _call(app, request_id=bad)
        made = seen["headers"]["X-Request-Id"]
        assert made != bad and logs.valid_request_id(made)
    assert len([x for x in lines(captured) if x["logger"] == "caesar.access"]) == 6


def test_access_line_for_an_error_status(captured):
    _call(AccessLog(_app([b"{}"], status="503 Service Unavailable")), path="/function/submit")
    access = [x for x in lines(captured) if x["logger"] == "caesar.access"][-1]
    assert access["status"] == 503 and access["level"] == "warning" and access["function"] == "submit"


def test_request_id_travels_in_cloudevents_and_connector_calls():
    with logs.bound(request_id="rid-7"):
        event = make_event("caesar.jobs.submitted", {"job_id": "j"}, about="j")
    assert event["requestid"] == "rid-7"
    assert "requestid" not in make_event("caesar.jobs.submitted", {"job_id": "j"}, about="j")
    headers, body = request_for("caesar.jobs.submitted", encode(event), event["id"])
    assert headers["X-Request-Id"] == "rid-7" and headers["ce-requestid"] == "rid-7"
    assert from_http(headers, body)["requestid"] == "rid-7"
    assert binary_headers(event)["ce-requestid"] == "rid-7"


def test_job_log_for_users_has_no_colour_codes_or_server_paths(tmp_path, monkeypatch):
    import sys

    workdir = tmp_path / "jobs" / "5d7c3a1e"
    monkeypatch.setenv("CAESAR_HOME", str(tmp_path))
    raw = (f"\x1b[1;31mERROR\x1b[0m reading {workdir}/input.fits\n"
           f"  File \"{sys.prefix}/lib/python3.11/site-packages/AegeanTools/BANE.py\", line 3\n"
           f"progress 10%\rprogress 50%\rprogress 100%\n\x1b]0;title\x07done in {tmp_path}/objects\n")
    text = user_text(raw, workdir)
    assert "\x1b" not in text and "\r" not in text
    assert str(tmp_path) not in text and sys.prefix not in text
    assert "ERROR reading ./input.fits" in text and "<python>/lib/python3.11/site-packages/AegeanTools" in text
    assert "progress 100%" in text and "progress 10%" not in text and "done in <data>/objects" in text
    assert Path(workdir).name not in text.replace("./input", "")


def test_runner_leaves_its_outcome_as_the_kubernetes_termination_message(tmp_path):
    from caesar_faas.runner.main import write_termination_message

    target = tmp_path / "termination-log"
    write_termination_message("sep rejected the image", target)  # no such file: not in a pod
    assert not target.exists()
    target.write_text("")
    write_termination_message("sep rejected the image: no WCS", target)
    assert target.read_text() == "sep rejected the image: no WCS"


class _SlowStream(io.StringIO):
    """A stream whose writes take long enough for other threads to queue lines meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        threading.Event().wait(0.002)  # a write in progress: the GIL is free for other threads
        return super().write(text)


def test_lines_of_many_threads_are_all_written_whole_and_in_order():
    """Lines are written in batches by whichever thread finds no write in progress: none is
    lost, none is cut, each thread's lines keep their order."""
    stream = _SlowStream()
    threads, per_thread = 8, 150
    with configured("testing", stream=stream, log_dir=""):
        log = logging.getLogger("caesar.test")

        def emit(t: int) -> None:
            for i in range(per_thread):
                log.info("line", extra={"writer": t, "i": i})

        workers = [threading.Thread(target=emit, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    rows = lines(stream)  # every line parses: none was cut or interleaved
    assert len(rows) == threads * per_thread
    for t in range(threads):
        assert [r["i"] for r in rows if r["writer"] == t] == list(range(per_thread))
    assert stream.writes < threads * per_thread  # batched: fewer writes than lines


@pytest.mark.parametrize("text", [
    "Authorization: Bearer abc.def-ghi", "bearer   xyz", "BEARER tok", "token eyJhbGciOi.eyJzdWIi.c2ln",
    "nats://s3cr3t@nats:4222", "mongodb://user:pw@mongo/db", "https://minio:9000/b/k?X-Amz-Signature=ab",
    "s3://bucket/key?versionId=1", "wss://host/x?token=1", "sig=abc&x=1", "access_token=zzz",
    "GET http://gw/function/files", "plain text", "a=b", "x://y", "job 1234 finished", "",
])
def test_the_redactor_shortcut_answers_what_every_substitution_would(text):
    """Text without any of the patterns' anchors skips the substitutions: the answer must be the
    one all of them give."""
    from caesar_faas.logs import redact

    full = text
    for pattern, replacement in redact.PATTERNS:
        full = pattern.sub(replacement, full)
    assert Redactor(secrets=[]).text(text) == full
