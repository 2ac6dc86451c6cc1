"""openapi.yaml and the routes agree, both ways, against the running local stack."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from openapi_spec_validator import validate

from caesar_faas.local import aliases
from caesar_faas.local.stack import load_stack

ROOT = Path(__file__).resolve().parents[1]
DOC = yaml.safe_load((ROOT / "openapi.yaml").read_text())
METHODS = {"get", "post", "put", "patch", "delete"}
SAMPLES = {"file_id": str(uuid.uuid4()), "job_id": str(uuid.uuid4()), "app": "sep", "product": "catalog.csv",
           "user": "alice", "key": "files/alice/x", "asset": "app.js"}


def operations():
    for path, item in DOC["paths"].items():
        for method in item:
            if method in METHODS:
                yield path, method


def test_document_is_valid_openapi():
    validate(DOC)


@pytest.mark.parametrize(("path", "method"), sorted(operations()))
def test_every_documented_route_exists(stack, path, method):
    url = stack.url + re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], path)
    resp = requests.request(method, url, timeout=30,
                            headers={"Authorization": f"Bearer {stack.token('admin', ('admin',))}"})
    assert resp.status_code != 405, f"{method.upper()} {path}: {resp.text}"
    if resp.status_code == 404:
        body = resp.json()
        assert body["status"] not in ("route not found",) and not body["status"].startswith("no route"), body
        assert body.get("error") != "function_not_found"  # caesar-rest bodies carry only status
    documented = {int(code) for code in DOC["paths"][path][method]["responses"]}
    assert resp.status_code in documented | {401}, f"{method.upper()} {path} answered {resp.status_code}"


def test_every_function_and_alias_is_documented():
    paths = set(DOC["paths"])
    for name in load_stack(ROOT / "stack.yml").functions:
        if name == "ui":
            assert {"/", "/openapi.yaml"} <= paths
        else:
            assert f"/function/{name}" in paths or any(p.startswith(f"/function/{name}/") for p in paths), name
    for pattern, _fn, _target in aliases.REWRITES:
        documented = [p for p in paths if p.startswith(aliases.PREFIX)
                      and re.fullmatch(re.escape(aliases.PREFIX) + pattern, re.sub(r"\{\w+\}", "x", p))]
        assert documented, f"alias {pattern} is not documented"
