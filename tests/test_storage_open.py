"""open_storage() URL handling, s3 prefixes, credentials from secret files, and MinIO records."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests

from caesar_faas import config
from caesar_faas.storage import ObjectInfo, clear_cache, open_storage
from caesar_faas.storage.local import LocalStorage
from caesar_faas.storage.notifications import COMPLETE_MULTIPART, PUT, minio_record, parse_minio_record
from caesar_faas.storage.s3 import S3Storage
from tests.fixtures.storage import storage_settings


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def test_file_url_and_cache(tmp_path: Path) -> None:
    settings = storage_settings(tmp_path / "home")
    url = f"file://{tmp_path}/objects"
    storage = open_storage(url, settings)
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "objects").resolve()
    assert storage.bucket == "objects"
    assert open_storage(url, settings) is storage
    seen = []
    assert open_storage(url, settings, notify=seen.append) is storage and storage.notify == seen.append
    assert open_storage(url, settings).notify == seen.append  # None keeps the earlier callback
    other = storage_settings(tmp_path / "home2")
    assert open_storage(url, other) is not storage
    assert open_storage(f"file://{tmp_path}/objects?bucket=caesar", settings).bucket == "caesar"


@pytest.mark.parametrize("url", ["file://relative/path", "file:relative", "ftp://x/y", "objects",
                                 "s3://", "s3://bucket?endpoint=http://x"])
def test_bad_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError):
        open_storage(url, storage_settings(tmp_path / "home"))


def test_s3_prefix_and_public_endpoint(moto_endpoint: str, aws_env: None, tmp_path: Path) -> None:
    raw = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    raw.create_bucket(Bucket="prefixed")
    public = "http://public.example.test:9000"
    storage = open_storage(f"s3://prefixed/tenant/a/?endpoint_url={moto_endpoint}&region=us-east-1"
                           f"&public_endpoint_url={public}", storage_settings(tmp_path / "home"))
    assert isinstance(storage, S3Storage) and storage.bucket == "prefixed"
    storage.put("files/u/x", io.BytesIO(b"data"))
    raw.put_object(Bucket="prefixed", Key="outside/y", Body=b"not ours")
    assert [o["Key"] for o in raw.list_objects_v2(Bucket="prefixed")["Contents"]] == ["outside/y",
                                                                                      "tenant/a/files/u/x"]
    assert [i.key for i in storage.list("")] == ["files/u/x"]
    assert storage.read_bytes("files/u/x") == b"data"
    url = storage.presign_get("files/u/x")
    assert url.startswith(f"{public}/prefixed/tenant/a/files/u/x?")
    # The same URL signed for the internal endpoint works: only the host differs.
    internal = f"{moto_endpoint}{urlsplit(url).path}?{urlsplit(url).query}"
    assert requests.get(internal, timeout=10).content == b"data"
    storage.ping()


def test_s3_credentials_from_secret_files(moto_endpoint: str, aws_env: None, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "caesar-s3-access-key").write_text("FROMSECRETFILE\n")
    (secrets / "caesar-s3-secret-key").write_text("s3cr3t\n")
    monkeypatch.setattr(config, "SECRETS_DIR", secrets)
    storage = S3Storage("whatever", endpoint_url=moto_endpoint, region="us-east-1")
    credential = parse_qs(urlsplit(storage.presign_get("k")).query)["X-Amz-Credential"][0]
    assert credential.startswith("FROMSECRETFILE/")
    monkeypatch.setattr(config, "SECRETS_DIR", tmp_path / "none")
    credential = parse_qs(urlsplit(S3Storage("whatever", endpoint_url=moto_endpoint).presign_get("k")).query)
    assert credential["X-Amz-Credential"][0].startswith("testing/")  # the environment (aws_env)


def test_minio_record_round_trip() -> None:
    key = "uploads/user@example.org/my file+v2 (ü).fits"
    info = ObjectInfo(key=key, size=123, etag="abc-2", modified=1700000000.25)
    record = minio_record("caesar", info, COMPLETE_MULTIPART)
    assert record["EventName"] == COMPLETE_MULTIPART
    assert record["Key"] == f"caesar/{key}"
    obj = record["Records"][0]["s3"]["object"]
    assert "+" in obj["key"] and " " not in obj["key"] and "/" not in obj["key"]
    assert record["Records"][0]["eventTime"] == "2023-11-14T22:13:20.250Z"
    assert parse_minio_record(record) == [(COMPLETE_MULTIPART, "caesar", key, 123, "abc-2")]


def test_parse_minio_record_tolerates_other_documents() -> None:
    assert parse_minio_record({}) == []
    assert parse_minio_record({"Records": "nope"}) == []
    assert parse_minio_record([]) == []  # type: ignore[arg-type]
    doc = {"Records": [
        {"eventName": PUT, "s3": {"bucket": {"name": "b"}, "object": {"key": "a%2Fb+c", "size": 5,
                                                                       "eTag": '"d41d"'}}},
        {"eventName": "s3:BucketCreated", "s3": {"bucket": {"name": "b"}}},
    ]}
    assert parse_minio_record(doc) == [(PUT, "b", "a/b c", 5, "d41d")]
