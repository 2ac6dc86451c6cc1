"""The runner as a Kubernetes Job runs it: no storage URL and no storage credentials at all, only
the presigned URLs of CAESAR_JOB's "transfer" (made by jobs/transfer.py with S3Storage against the
moto server). The real runner (`python -m caesar_faas.runner`), the real sep finder, a small
synthetic image; every product must land under the job's prefix with the manifest's sizes and
sha256. Plus the HTTP client's own rules: retries, errors without URLs in them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from caesar_faas.apps.registry import get_app
from caesar_faas.apps.validation import validate_options
from caesar_faas.config import load_settings
from caesar_faas.jobs.transfer import presigned_transfer, transfer_expiry
from caesar_faas.runner.contract import COMMON_PRODUCTS, PRODUCT_NAMES, RESULT_FILE, output_prefix, runner_env
from caesar_faas.runner.jobenv import ContractError, load_context
from caesar_faas.runner.presigned import (
    TransferError,
    TransientTransferError,
    get_chunks,
    put_file,
    redact,
    with_retries,
)
from caesar_faas.storage.base import ObjectNotFound
from caesar_faas.storage.s3 import S3Storage
from tests.fixtures.runner import ROOT, status_events
from tests.fixtures.storage import LocalServer
from tests.helpers import free_port, wait_or_kill
from tests.synth import make_image

MEDIA = {"catalog.csv": "text/csv", "catalog.vot": "application/x-votable+xml",
         "catalog.json": "application/json", "sources.reg": "text/plain", "preview.png": "image/png",
         "job.log": "text/plain", "manifest.json": "application/json"}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "field.fits"
    make_image(str(path), size=256, n_sources=8)
    return path


@pytest.fixture
def bucket(moto_endpoint: str, aws_env: None) -> tuple[Any, str]:
    """A fresh bucket on the moto server and a boto3 client with the test's (service) credentials."""
    name = f"transfer-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    return s3, name


def record(key: str, timeout: int = 300) -> dict[str, Any]:
    """A job record as the dispatcher launches it."""
    job_id = str(uuid.uuid4())
    return {"id": job_id, "owner": "alice", "app": "sep", "options": validate_options(get_app("sep"), {}),
            "input": {"file_id": "f-" + job_id[:8], "key": key, "filename": "field.fits"},
            "timeout": timeout, "created": 1_700_000_000.0}


def runner_environment(job: dict[str, Any], transfer: dict[str, Any], workdir: Path, nats_url: str) -> dict[str, str]:
    """What a Job's container gets: the contract variables with the transfer URLs, and nothing
    that could reach the storage otherwise (no CAESAR_STORAGE_URL, no AWS credentials, no
    credential files or instance metadata to fall back on)."""
    settings = load_settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAESAR_", "AWS_"))}
    env.update(runner_env(job, settings, str(workdir), transfer=transfer))
    env.update({"CAESAR_NATS_URL": nats_url, "PYTHONPATH": str(ROOT),
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
                "AWS_EC2_METADATA_DISABLED": "true"})
    assert "CAESAR_STORAGE_URL" not in env
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
    return env


def run_runner(env: dict[str, str], workdir: Path, wait: float = 180.0) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir.parent / f"{workdir.name}.stderr", "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "caesar_faas.runner"], cwd=workdir, env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
        return wait_or_kill(proc, wait)


def launch(s3: Any, bucket: str, moto_endpoint: str, data: bytes, tmp_path: Path,
           nats_url: str) -> tuple[dict[str, Any], dict[str, Any], Path, dict[str, str]]:
    """Put the input with boto3, presign like the Kubernetes backend, build the Job's environment."""
    key = f"files/alice/{uuid.uuid4()}"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    job = record(key)
    storage = S3Storage(bucket, endpoint_url=moto_endpoint, region="us-east-1")
    transfer = presigned_transfer(storage, job, expires=transfer_expiry(job["timeout"]))
    workdir = tmp_path / "jobs" / job["id"]
    return job, transfer, workdir, runner_environment(job, transfer, workdir, nats_url)


def objects(s3: Any, bucket: str) -> dict[str, dict[str, Any]]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"]) for o in listed}


def assert_no_url_in(text: str, transfer: dict[str, Any]) -> None:
    for url in [transfer["input_url"], *transfer["product_urls"].values()]:
        signature = url.rsplit("X-Amz-Signature=", 1)[1]
        assert signature not in text
    assert "X-Amz-" not in text


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_runner_with_only_transfer_urls(bucket, moto_endpoint: str, nats_url: str, image: Path, tmp_path: Path,
                                        gzipped: bool) -> None:
    s3, name = bucket
    raw = image.read_bytes()
    data = gzip.compress(raw, compresslevel=1) if gzipped else raw
    job, transfer, workdir, env = launch(s3, name, moto_endpoint, data, tmp_path, nats_url)

    assert run_runner(env, workdir) == 0, (workdir.parent / f"{workdir.name}.stderr").read_text()[-3000:]

    events = status_events(nats_url, job["id"])
    final = events[-1]["data"]
    assert (final["phase"], final["state"], final["exit_code"]) == ("finished", "SUCCESS", 0)
    assert final["products"] == list(COMMON_PRODUCTS)  # sep: no FITS maps
    assert json.loads((workdir / RESULT_FILE).read_text())["state"] == "SUCCESS"

    prefix = output_prefix(job["owner"], job["id"])
    stored = objects(s3, name)
    # Every product under the job's prefix, nothing anywhere else (the input is the only other key).
    assert sorted(stored) == sorted([job["input"]["key"], *(prefix + n for n in COMMON_PRODUCTS)])
    bodies = {key[len(prefix):]: obj["Body"].read() for key, obj in stored.items() if key.startswith(prefix)}
    manifest = json.loads(bodies["manifest.json"])
    assert [entry["name"] for entry in manifest] == list(COMMON_PRODUCTS[:-1])
    for entry in manifest:
        body = bodies[entry["name"]]
        assert entry["size"] == len(body) > 0
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
    for product, content_type in MEDIA.items():  # the PUT's Content-Type became the object's
        assert stored[prefix + product]["ContentType"] == content_type

    # The input came through the GET URL: its provenance is the stored object's sha256, and a
    # gzip upload was unpacked on the way.
    doc = json.loads(bodies["catalog.json"])
    assert doc["provenance"]["input_sha256"] == hashlib.sha256(data).hexdigest()
    assert len(doc["sources"]) >= 4
    assert (workdir / "input.fits").read_bytes() == raw
    log_text = bodies["job.log"].decode()
    assert "input" in log_text and ("gzip" in log_text) == gzipped
    assert_no_url_in(log_text + (workdir.parent / f"{workdir.name}.stderr").read_text(), transfer)


def test_missing_input_is_a_usage_failure_and_the_log_still_arrives(bucket, moto_endpoint: str, nats_url: str,
                                                                    tmp_path: Path) -> None:
    s3, name = bucket
    job, transfer, workdir, env = launch(s3, name, moto_endpoint, b"x", tmp_path, nats_url)
    s3.delete_object(Bucket=name, Key=job["input"]["key"])  # deleted between submit and start

    assert run_runner(env, workdir, wait=120) == 2
    final = status_events(nats_url, job["id"])[-1]["data"]
    assert (final["state"], final["error_class"]) == ("FAILURE", "usage")
    assert "no longer in storage" in final["message"]
    prefix = output_prefix(job["owner"], job["id"])
    stored = objects(s3, name)
    assert sorted(stored) == [prefix + "job.log", prefix + "manifest.json"]
    assert_no_url_in(stored[prefix + "job.log"]["Body"].read().decode(), transfer)


# ---- the contract -----------------------------------------------------------------------------------

def contract_env(transfer: Any, tmp_path: Path, **extra: str) -> dict[str, str]:
    job = record("files/alice/x")
    doc = json.loads(runner_env(job, load_settings(), str(tmp_path), transfer=transfer)["CAESAR_JOB"])
    return {"CAESAR_JOB": json.dumps(doc), "CAESAR_NATS_URL": "nats://127.0.0.1:1",
            "CAESAR_WORKDIR": str(tmp_path), **extra}


def test_transfer_replaces_the_storage_url(tmp_path: Path) -> None:
    urls = {"input_url": "http://s3.example.org/b/in?sig=1",
            "product_urls": {n: f"http://s3.example.org/b/jobs/alice/j/{n}?sig=2" for n in PRODUCT_NAMES}}
    env = runner_env(record("files/alice/x"), load_settings(), str(tmp_path), transfer=urls)
    assert "CAESAR_STORAGE_URL" not in env and json.loads(env["CAESAR_JOB"])["transfer"] == urls
    assert "CAESAR_STORAGE_URL" in runner_env(record("files/alice/x"), load_settings(), str(tmp_path))

    ctx = load_context(contract_env(urls, tmp_path))
    assert ctx.storage_url is None and ctx.transfer is not None
    assert ctx.transfer.input_url == urls["input_url"] and ctx.transfer.product_urls == urls["product_urls"]
    assert "sig=" not in repr(ctx)  # the context may be logged; the URLs are credentials

    with pytest.raises(ContractError, match="CAESAR_STORAGE_URL"):  # neither transfer nor storage
        load_context(contract_env(None, tmp_path))
    missing = dict(urls, product_urls={n: u for n, u in urls["product_urls"].items() if n != "preview.png"})
    with pytest.raises(ContractError, match="preview.png"):
        load_context(contract_env(missing, tmp_path))
    with pytest.raises(ContractError, match="input_url"):
        load_context(contract_env(dict(urls, input_url="file:///etc/passwd"), tmp_path))
    with pytest.raises(ContractError, match="transfer"):
        load_context(contract_env(["not", "an", "object"], tmp_path))



def test_input_sha256_in_the_contract(tmp_path: Path) -> None:
    env = contract_env(None, tmp_path, CAESAR_STORAGE_URL="file:///tmp/x")
    assert load_context(env).input_sha256 is None  # the test record declares none
    doc = json.loads(env["CAESAR_JOB"])
    digest = "ab" * 32
    doc["input"]["sha256"] = digest
    assert load_context({**env, "CAESAR_JOB": json.dumps(doc)}).input_sha256 == digest
    doc["input"]["sha256"] = "AB" * 32
    with pytest.raises(ContractError, match="input.sha256"):
        load_context({**env, "CAESAR_JOB": json.dumps(doc)})


# ---- the HTTP client ----------------------------------------------------------------------------------

def test_errors_never_carry_the_url(local_storage_server: LocalServer, tmp_path: Path) -> None:
    storage = local_storage_server.storage
    source = tmp_path / "catalog.csv"
    source.write_text("a,b\n1,2\n")
    url = storage.presign_put("jobs/alice/j/catalog.csv")
    put_file(url, source, content_type="text/csv", what="catalog.csv")
    assert storage.read_bytes("jobs/alice/j/catalog.csv") == b"a,b\n1,2\n"

    # A refused URL (here: altered) is a permanent error, reported without the URL.
    with pytest.raises(TransferError) as info:
        put_file(url.replace("catalog.csv", "other.csv"), source, content_type="text/csv", what="catalog.csv")
    assert not isinstance(info.value, TransientTransferError)
    assert "HTTP 403" in str(info.value) and "sig=" not in str(info.value) and "/storage/o/" not in str(info.value)

    with pytest.raises(ObjectNotFound):
        list(get_chunks(storage.presign_get("files/alice/none"), "the input"))

    # Nothing listens: a transient error, whose text (requests names the URL) is redacted and
    # whose cause is not chained into tracebacks.
    dead = f"http://127.0.0.1:{free_port()}/bucket/key?X-Amz-Signature=deadbeef"
    with pytest.raises(TransientTransferError) as info:
        list(get_chunks(dead, "the input"))
    assert "deadbeef" not in str(info.value) and "X-Amz" not in str(info.value)
    assert info.value.__suppress_context__ and info.value.__cause__ is None
    assert redact("GET http://h/p?X-Amz-Signature=s failed at /p?x=1 (host h)") == "GET <url> failed at <url> (host h)"


def test_empty_product_is_sent_with_a_length(local_storage_server: LocalServer, tmp_path: Path) -> None:
    empty = tmp_path / "sources.reg"
    empty.write_bytes(b"")
    put_file(local_storage_server.storage.presign_put("jobs/alice/j/sources.reg"), empty,
             content_type="text/plain", what="sources.reg")
    assert local_storage_server.storage.stat("jobs/alice/j/sources.reg").size == 0


def test_transient_failures_are_retried_then_given_up() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientTransferError("HTTP 503")
        return "done"

    assert with_retries(flaky, "a test", attempts=3, backoff=0) == "done" and len(calls) == 3
    calls.clear()
    with pytest.raises(TransientTransferError):
        with_retries(flaky, "a test", attempts=2, backoff=0)
    assert len(calls) == 2

    def refused() -> None:
        calls.append(1)
        raise TransferError("HTTP 403")

    calls.clear()
    with pytest.raises(TransferError):
        with_retries(refused, "a test", attempts=3, backoff=0)
    assert len(calls) == 1  # a refusal is not retried


def test_get_reads_the_stored_bytes_without_decoding(local_storage_server: LocalServer) -> None:
    """A gzip object arrives as stored (the runner hashes and unpacks it itself)."""
    storage = local_storage_server.storage
    packed = gzip.compress(b"SIMPLE  =                    T" * 100)
    storage.put("files/alice/g", io.BytesIO(packed))
    assert b"".join(get_chunks(storage.presign_get("files/alice/g"), "the input")) == packed
