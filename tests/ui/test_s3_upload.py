"""The page's large upload against S3: a stack on s3:// storage (moto), its bucket carrying the
CORS rule of infra/s3/cors.json for the page's origin, and the browser PUTting the presigned
parts straight to the bucket, another origin, reading their ETags and completing the upload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from tests.fixtures.stack import LocalStack
from tests.helpers import free_port
from tests.ui.conftest import SECRET, Ui

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "caesar-ui"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, browser) -> Iterator[LocalStack]:
    port = free_port()
    rules = json.loads((ROOT / "infra/s3/cors.json").read_text())
    for rule in rules["CORSRules"]:
        rule["AllowedOrigins"] = [f"http://localhost:{port}"]  # the deployment's page origin
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=rules)
    home = tmp_path_factory.mktemp("ui-s3-stack")
    stack = LocalStack(home, port, free_port(), output=home / "stack.out", extra_env={
        **AWS,
        "CAESAR_STORAGE_URL": f"s3://{BUCKET}?endpoint_url={moto_endpoint}&region=us-east-1",
        "CAESAR_JWT_SECRET": SECRET,
        "CAESAR_MAX_INLINE_UPLOAD": str(1024 * 1024),
        "CAESAR_PART_SIZE": str(5 * 1024 * 1024),
    })
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def s3_ui(browser, s3_stack, tmp_path) -> Iterator[Ui]:
    found = Ui(browser, s3_stack, tmp_path)
    yield found
    found.close()
    assert found.unexpected_errors() == [], "console errors on the page"


def test_large_upload_goes_to_the_bucket_across_origins(s3_ui, images, moto_endpoint):
    page = s3_ui.signed_in("otto")
    s3_ui.home_ready(page)
    puts = []
    page.on("requestfinished", lambda req: req.method == "PUT" and puts.append(req))
    page.get_by_label("FITS file").set_input_files(images["large"])
    page.get_by_role("button", name="Upload").click()
    page.get_by_text("large.fits is ready").wait_for(timeout=60_000)
    moto = urlsplit(moto_endpoint)
    assert len(puts) == 2
    for put in puts:
        url = urlsplit(put.url)
        assert (url.hostname, url.port) == (moto.hostname, moto.port) and url.path.startswith(f"/{BUCKET}/files/otto/")
        assert "partNumber=" in url.query and "uploadId=" in url.query and put.headers.get("x-amz-checksum-crc32")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    listed = s3_ui.api("otto").get(s3_ui.stack.url + "/function/files", timeout=10).json()["files"]
    record = next(f for f in listed if f["filename_orig"] == "large.fits")
    stored = s3.get_object(Bucket=BUCKET, Key=f"files/otto/{record['uuid']}")["Body"].read()
    assert stored == images["large"].read_bytes() and record["state"] == "ready"

    with page.expect_download() as got:  # the download link is a presigned GET of the bucket
        page.get_by_role("button", name="Download large.fits").click()
    assert got.value.suggested_filename == "large.fits"
    assert open(got.value.path(), "rb").read() == stored
    s3_ui.shoot(page, "s3-upload")
