"""The event contracts in events/: schemas are valid, the examples and the events the real code
publishes (through a real nats-server) match them, and the stream definition is what the code
creates."""

from __future__ import annotations

import asyncio
import json
import types
import uuid
from pathlib import Path

import jsonschema
import nats
import pytest
import yaml

from caesar_faas.events import subjects as code
from caesar_faas.events.bus import get_bus
from caesar_faas.events.subjects import STREAM
from caesar_faas.storage.base import ObjectInfo
from caesar_faas.storage.notifications import COMPLETE_MULTIPART, minio_record, parse_minio_record

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
TABLE = yaml.safe_load((EVENTS / "subjects.yaml").read_text())
SCHEMAS = {p.name: json.loads(p.read_text()) for p in (EVENTS / "schemas").glob("*.json")}


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMAS[name], format_checker=jsonschema.FormatChecker())


def check_event(subject: str, doc: dict) -> None:
    """Raise when `doc`, published on `subject`, breaks its contract."""
    entry = TABLE["subjects"][subject if subject in TABLE["subjects"] else "caesar.dead.>"]
    schema = Path(entry["schema"]).name
    if entry["cloudevent"]:
        validator("cloudevent.json").validate(doc)
        assert doc["type"] == entry["type"] == code.event_type(subject)
        validator(schema).validate(doc["data"])
    else:
        validator(schema).validate(doc)


def last_message(nats_url: str, subject: str) -> dict:
    async def fetch() -> bytes:
        nc = await nats.connect(nats_url)
        try:
            msg = await nc.jetstream().get_last_msg(STREAM, subject)
            return msg.data
        finally:
            await nc.close()

    return json.loads(asyncio.run(fetch()))


def test_schemas_are_valid_json_schema():
    assert SCHEMAS
    for name, schema in SCHEMAS.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"].endswith("2020-12/schema"), name


def test_subject_table_matches_the_code():
    assert TABLE["stream"] == code.STREAM
    assert TABLE["stream_subjects"] == code.STREAM_SUBJECTS
    assert TABLE["type_prefix"] == code.TYPE_PREFIX
    constants = {v for k, v in vars(code).items() if k.isupper() and isinstance(v, str) and v.startswith("caesar.")}
    constants.discard(code.DEAD_PREFIX)
    assert constants <= set(TABLE["subjects"])
    assert code.DEAD_PREFIX + ">" in TABLE["subjects"]
    for subject, entry in TABLE["subjects"].items():
        assert (EVENTS / entry["schema"]).exists(), subject
        if entry["cloudevent"]:
            assert entry["type"] == code.event_type(subject)


def test_every_subject_has_a_valid_example():
    examples = {p.stem: json.loads(p.read_text()) for p in (EVENTS / "examples").glob("*.json")}
    for subject in TABLE["subjects"]:
        matching = [s for s in examples if s == subject or (subject.endswith(">") and s.startswith(subject[:-1]))]
        assert matching, f"no example for {subject}"
    for subject, doc in examples.items():
        check_event(subject, doc)


def test_schemas_reject_what_breaks_the_contract():
    status = json.loads((EVENTS / "examples/caesar.jobs.status.json").read_text())
    del status["data"]["exit_code"]  # a finished event must say how the job ended
    with pytest.raises(jsonschema.ValidationError):
        check_event("caesar.jobs.status", status)
    status = json.loads((EVENTS / "examples/caesar.jobs.status.json").read_text())
    status["data"]["progress"] = 101
    with pytest.raises(jsonschema.ValidationError):
        check_event("caesar.jobs.status", status)
    submitted = json.loads((EVENTS / "examples/caesar.jobs.submitted.json").read_text())
    submitted["specversion"] = "0.3"
    with pytest.raises(jsonschema.ValidationError):
        check_event("caesar.jobs.submitted", submitted)


def test_minio_documents_match_the_schema_and_the_parser():
    example = json.loads((EVENTS / "examples/caesar.storage.events.json").read_text())
    (name, bucket, key, size, _), = parse_minio_record(example)
    assert (name, bucket, size) == (COMPLETE_MULTIPART, "caesar", 536870912)
    assert key.startswith("files/alice/")  # the example's key is query-escaped, as MinIO sends it
    notification = yaml.safe_load((EVENTS / "minio/notification.yaml").read_text())
    assert COMPLETE_MULTIPART in notification["rule"]["event_names"]
    built = minio_record("caesar", ObjectInfo(key="files/bob/x y", size=10, etag="abc", modified=1.5), COMPLETE_MULTIPART)
    check_event(code.STORAGE_EVENTS, built)


def test_stream_definition_is_what_the_code_creates(nats_url):
    get_bus(nats_url).ping()  # creates the stream when missing, as every publisher does

    async def info() -> dict:
        nc = await nats.connect(nats_url)
        try:
            return (await nc.jetstream().stream_info(STREAM)).config.as_dict()
        finally:
            await nc.close()

    live = asyncio.run(info())
    defined = json.loads((EVENTS / "jetstream/stream-CAESAR.json").read_text())
    for key in ("name", "subjects", "max_age", "duplicate_window", "num_replicas"):
        assert live[key] == defined[key], key
    for key in ("retention", "storage", "discard"):
        assert getattr(live[key], "value", live[key]) == defined[key], key


def test_consumer_definitions_cover_every_binding():
    consumers = [json.loads(p.read_text()) for p in (EVENTS / "jetstream/consumers").glob("*.json")]
    subjects = {c["filter_subject"] for c in consumers}
    assert {code.JOBS_SUBMITTED, code.JOBS_STATUS, code.JOBS_CANCEL, code.STORAGE_EVENTS} <= subjects
    for consumer in consumers:
        assert consumer["ack_policy"] == "explicit" and consumer["max_deliver"] > 1
        assert consumer["filter_subject"] in TABLE["subjects"]


# --- what the real code publishes ---------------------------------------------------------------------

def test_published_events_match_their_schemas(nats_url, tmp_path):
    from caesar_faas.files import announce
    from caesar_faas.jobs.control import _publish_cancel
    from caesar_faas.jobs.submit import publish_submitted
    from caesar_faas.runner.outcome import Outcome
    from caesar_faas.runner.status import StatusReporter
    from caesar_faas.store import open_store

    bus = get_bus(nats_url)
    owner = f"schema-{uuid.uuid4().hex[:8]}"
    job = {"id": str(uuid.uuid4()), "owner": owner, "app": "sep"}
    file_id = str(uuid.uuid4())
    record = {"id": file_id, "owner": owner, "key": f"files/{owner}/{file_id}", "size": 2880, "sha256": "0" * 64,
              "format": "fits", "shape": [10, 10], "tag": None}

    assert publish_submitted(bus, job)
    check_event(code.JOBS_SUBMITTED, last_message(nats_url, code.JOBS_SUBMITTED))

    _publish_cancel(bus, job)
    check_event(code.JOBS_CANCEL, last_message(nats_url, code.JOBS_CANCEL))

    store = open_store(f"sqlite:///{tmp_path / 'caesar.db'}")
    store.insert("files", {**record, "created": 1.0, "announced": False})
    assert announce(types.SimpleNamespace(bus=bus, store=store), record)
    created = last_message(nats_url, code.FILES_CREATED)
    check_event(code.FILES_CREATED, created)
    assert created["data"]["file_id"] == file_id

    reporter = StatusReporter(job["id"], owner, nats_url)
    reporter.started("starting")
    reporter.progress(40, "finding sources")
    reporter.finished(Outcome.usage("sep rejected the options").finished_data())
    assert reporter.close(10)
    finished = last_message(nats_url, code.JOBS_STATUS)
    check_event(code.JOBS_STATUS, finished)
    assert finished["data"]["phase"] == "finished" and finished["data"]["job_id"] == job["id"]
