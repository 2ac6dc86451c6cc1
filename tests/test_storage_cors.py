"""What a browser needs from presigned URLs: the local signed endpoint answers CORS preflights
and lets any origin read the ETag (tests/ui drives the real browser through it), and the bucket
rule in infra/s3/cors.json does the same on S3 (moto), as the page's uploads need."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import boto3
import requests
import yaml

from caesar_faas.checksums import crc32_b64
from caesar_faas.storage import open_storage
from tests.fixtures.storage import storage_settings

ROOT = Path(__file__).resolve().parents[1]
CORS_RULES = json.loads((ROOT / "infra/s3/cors.json").read_text())
PAGE = "http://localhost:8080"  # the page's origin; the URLs name another host
PREFLIGHT = {"Origin": PAGE, "Access-Control-Request-Method": "PUT",
             "Access-Control-Request-Headers": "content-type,x-amz-checksum-crc32"}


def header_list(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


def test_local_signed_endpoint_answers_the_preflight(local_storage_server):
    url = local_storage_server.storage.presign_put("files/alice/cors", size=4, expires=60)
    resp = requests.options(url, headers=PREFLIGHT, timeout=10)
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert {"put", "get"} <= header_list(resp.headers["Access-Control-Allow-Methods"])
    assert {"content-type", "x-amz-checksum-crc32"} <= header_list(resp.headers["Access-Control-Allow-Headers"])
    # A preflight carries no signature and changes nothing.
    assert not local_storage_server.storage.exists("files/alice/cors")


def test_local_signed_answers_expose_the_etag_to_any_origin(local_storage_server):
    storage = local_storage_server.storage
    body = b"FITS"
    crc = crc32_b64(zlib.crc32(body))
    put = storage.presign_put("files/alice/cors", size=len(body), expires=60, crc32=crc)
    resp = requests.put(put, data=body, headers={"Origin": PAGE, "x-amz-checksum-crc32": crc}, timeout=10)
    assert resp.status_code == 200 and resp.headers["ETag"]
    assert resp.headers["Access-Control-Allow-Origin"] == "*" and "etag" in header_list(
        resp.headers["Access-Control-Expose-Headers"])
    refused = requests.put(put + "0", data=body, headers={"Origin": PAGE, "x-amz-checksum-crc32": crc}, timeout=10)
    assert refused.status_code == 403 and refused.headers["Access-Control-Allow-Origin"] == "*"  # readable errors
    got = requests.get(storage.presign_get("files/alice/cors", expires=60, filename="a.fits"),
                       headers={"Origin": PAGE}, timeout=10)
    assert got.content == body and "content-disposition" in header_list(got.headers["Access-Control-Expose-Headers"])


def bucket_with_rules(moto_endpoint: str, name: str, origin: str) -> None:
    rules = json.loads(json.dumps(CORS_RULES))
    for rule in rules["CORSRules"]:
        rule["AllowedOrigins"] = [origin]
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_cors(Bucket=name, CORSConfiguration=rules)  # the document is valid S3 input


def test_infra_cors_rule_lets_the_page_put_parts_and_read_etags(moto_endpoint, aws_env, tmp_path):
    bucket_with_rules(moto_endpoint, "cors-rule", PAGE)
    storage = open_storage(f"s3://cors-rule?endpoint_url={moto_endpoint}&region=us-east-1",
                           storage_settings(tmp_path / "home"))
    parts = storage.create_multipart("files/alice/big", size=6 * 1024 * 1024, part_size=5 * 1024 * 1024, expires=60)
    url = parts.parts[0].url
    pre = requests.options(url, headers=PREFLIGHT, timeout=10)
    assert pre.status_code == 200 and pre.headers["Access-Control-Allow-Origin"] == PAGE
    assert "put" in header_list(pre.headers["Access-Control-Allow-Methods"])
    assert {"content-type", "x-amz-checksum-crc32"} <= header_list(pre.headers["Access-Control-Allow-Headers"])
    body = b"\0" * parts.parts[0].size
    resp = requests.put(url, data=body, headers={"Origin": PAGE, **parts.parts[0].headers}, timeout=30)
    assert resp.status_code == 200 and resp.headers["ETag"]
    assert "etag" in header_list(resp.headers["Access-Control-Expose-Headers"])
    other = requests.options(url, headers={**PREFLIGHT, "Origin": "https://elsewhere.example"}, timeout=10)
    assert other.status_code == 403  # another origin is refused by the rule


def test_minio_manifest_sets_the_server_wide_cors_origin():
    docs = [d for d in yaml.safe_load_all((ROOT / "infra/k8s/minio.yaml").read_text()) if d]
    env = {e["name"]: e.get("value") for d in docs if d.get("kind") == "StatefulSet"
           for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    origin = env["MINIO_API_CORS_ALLOW_ORIGIN"]
    assert origin.startswith("https://") and origin.count("/") == 2  # an origin, not a URL with a path
    assert origin in CORS_RULES["CORSRules"][0]["AllowedOrigins"]  # one origin to change, in both places
