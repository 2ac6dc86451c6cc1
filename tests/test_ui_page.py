"""The ui function: the page, its own files and nothing else, a Content-Security-Policy naming
exactly the origins the page talks to, and the public page configuration (OIDC sign-in)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from caesar_faas import webpage
from caesar_faas.config import load_settings
from caesar_faas.local.gateway import create_app

STATIC = Path(__file__).resolve().parents[1] / "functions/ui/static"


@pytest.fixture
def client(monkeypatch, tmp_path):
    for name in ("CAESAR_OIDC_ISSUER", "CAESAR_OIDC_CLIENT_ID", "CAESAR_OIDC_PROVIDER_NAME", "CAESAR_OIDC_SCOPE",
                 "CAESAR_STORAGE_URL", "CAESAR_PUBLIC_URL", "CAESAR_GATEWAY_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAESAR_HOME", str(tmp_path))
    monkeypatch.setenv("CAESAR_HTTP_PORT", "8123")
    return create_app().test_client()


def test_the_page_loads_its_scripts_styles_and_icon_from_its_own_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/function/ui/[^"]+)"', html)
    assert {"/function/ui/app.js", "/function/ui/app.css", "/function/ui/favicon.svg"} <= set(assets)
    assert "<script>" not in html and "style=" not in html  # nothing inline: the policy allows none
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for asset in set(assets) - {"/function/ui/openapi.yaml"}:
        resp = client.get(asset)
        assert resp.status_code == 200 and resp.mimetype == types[Path(asset).suffix], asset
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/function/ui/").get_data(as_text=True) == html  # the same page under the function


def test_every_module_the_page_imports_is_served(client):
    for script in STATIC.glob("*.js"):
        for target in re.findall(r"from '\./([\w.-]+)'", script.read_text()):
            assert (STATIC / target).is_file(), f"{script.name} imports {target}"
            assert client.get(f"/function/ui/{target}").status_code == 200


@pytest.mark.parametrize("path", ["/function/ui/handler.py", "/function/ui/requirements.txt", "/function/ui/.x.js",
                                  "/function/ui/static/app.js", "/function/ui/nothing.js",
                                  "/function/ui/..%2Fhandler.py"])
def test_nothing_but_the_pages_files_is_served(client, path):
    resp = client.get(path)
    assert resp.status_code == 404 and resp.is_json, path


def test_only_get(client):
    assert client.post("/function/ui/").status_code == 405


def test_content_security_policy_is_strict(client):
    policy = client.get("/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    # file:// mode: presigned URLs point at the gateway's own signed endpoint (its public URL)
    assert directives["connect-src"] == "'self' http://127.0.0.1:8123"


def policy_for(**changes):
    settings = dataclasses.replace(load_settings(), **changes)
    policy = webpage.content_security_policy(settings)
    return dict(d.strip().split(" ", 1) for d in policy.split(";"))["connect-src"].split()


def test_connect_src_names_the_storage_host_and_the_provider():
    assert policy_for(storage_url="s3://b?endpoint_url=http://minio:9000&public_endpoint_url=https://s3.example.org/x",
                      oidc_issuer="https://id.example.org/realms/astro", oidc_client_id="web") == [
        "'self'", "https://s3.example.org", "https://id.example.org"]
    assert policy_for(storage_url="s3://b?endpoint_url=http://minio:9000") == ["'self'", "http://minio:9000"]
    assert policy_for(storage_url="s3://b") == ["'self'", "https://*.amazonaws.com"]
    assert policy_for(storage_url="file:///x", public_url="https://caesar.example.org/base") == [
        "'self'", "https://caesar.example.org"]


def test_config_tells_the_page_about_an_oidc_provider(client, monkeypatch):
    assert client.get("/function/ui/config.json").get_json() == {"oidc": None}
    monkeypatch.setenv("CAESAR_OIDC_ISSUER", "https://iam.example.org/")
    assert client.get("/function/ui/config.json").get_json() == {"oidc": None}  # a client id is needed too
    monkeypatch.setenv("CAESAR_OIDC_CLIENT_ID", "caesar-web")
    resp = client.get("/function/ui/config.json")
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.get_json() == {"oidc": {"issuer": "https://iam.example.org/", "client_id": "caesar-web",
                                        "provider": "iam.example.org", "scope": "openid"}}
    monkeypatch.setenv("CAESAR_OIDC_PROVIDER_NAME", "INDIGO IAM")
    monkeypatch.setenv("CAESAR_OIDC_SCOPE", "openid profile")
    oidc = client.get("/function/ui/config.json").get_json()["oidc"]
    assert oidc["provider"] == "INDIGO IAM" and oidc["scope"] == "openid profile"
