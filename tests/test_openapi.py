"""openapi.yaml and the routes agree, both ways, against the running local stack."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate

from caesar_faas.local import aliases
from caesar_faas.local.stack import load_stack
from tests.openapi_doc import DOC, resolved

ROOT = Path(__file__).resolve().parents[1]
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
        # the UWS face answers errors in text (UWS 1.1), every other route in JSON
        body = resp.json() if not resp.headers.get("Content-Type", "").startswith("text/plain") else \
            {"status": resp.text.strip(), "error": ""}
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


@pytest.mark.parametrize(("path", "method"), sorted(
    (path, method) for path, item in DOC["paths"].items() for method in ("get", "post", "put", "delete", "patch")
    if method not in item and path not in ("/healthz",)))
def test_undocumented_methods_answer_405_with_allow(stack, path, method):
    """A method the document does not list on a route that exists is a 405 whose Allow names what
    the document lists (not a 404 as if the route were missing, nor a 200)."""
    url = stack.url + re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], path)
    resp = requests.request(method, url, timeout=30,
                            headers={"Authorization": f"Bearer {stack.token('admin', ('admin',))}"})
    assert resp.status_code == 405, f"{method.upper()} {path}: {resp.status_code} {resp.text}"
    # UWS answers its errors as text, as the standard says (UWS 1.1 §2.2.3); every other face in JSON.
    expected_type = "text/plain" if path.startswith("/function/uws/") else "application/json"
    assert resp.headers["Content-Type"].startswith(expected_type)
    allowed = {m.strip().lower() for m in resp.headers.get("Allow", "").split(",")}
    documented = {m for m in DOC["paths"][path] if m in METHODS | {"options"}}
    assert documented <= allowed, f"{method.upper()} {path}: Allow {resp.headers.get('Allow')!r}"


# ---- the drift the review's schemathesis run found (issue 18 item 10); tests/test_schemathesis.py
# keeps the whole document honest, these pin each finding ----

def assert_conforms(resp, path: str, method: str = "get") -> None:
    """The answer's status is documented for the operation and its JSON body fits that schema."""
    from openapi_schema_validator import OAS30Validator

    responses = DOC["paths"][path][method]["responses"]
    assert str(resp.status_code) in responses, f"{method.upper()} {path} answered {resp.status_code}: {resp.text}"
    content = resolved(responses[str(resp.status_code)]).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is not None:
        OAS30Validator(schema).validate(resp.json())


def admin_get(stack, path: str, **params):
    return requests.get(stack.url + path, params=params, timeout=30,
                        headers={"Authorization": f"Bearer {stack.token('admin', ('admin',))}"})


@pytest.mark.parametrize("app", ["sep", "aegean", "pybdsf", "caesar", "mrcnn"])
def test_describe_answers_what_its_schema_says(stack, app):
    """caesar-rest's describe format: `enum` is a boolean and `advanced` 0/1 (the schema said an
    array and a boolean)."""
    resp = admin_get(stack, f"/function/describe/{app}")
    assert resp.status_code == 200
    assert_conforms(resp, "/function/describe/{app}")
    assert all(opt["advanced"] in (0, 1) and isinstance(opt["enum"], bool) for opt in resp.json().values())


def test_status_declares_its_400(stack):
    resp = admin_get(stack, f"/function/status/{uuid.uuid4()}", wait="61")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_query"
    assert_conforms(resp, "/function/status/{job_id}")


@pytest.mark.parametrize(("path", "param"), [("/function/jobs", "state"), ("/function/jobs", "cursor"),
                                             ("/function/files", "cursor"), ("/function/files", "tag")])
def test_an_empty_filter_or_cursor_is_no_filter(stack, path, param):
    """The schema allows `cursor=` and `state=` (a form with nothing chosen sends them): the first
    page, unfiltered."""
    resp = admin_get(stack, path, **{param: ""})
    assert resp.status_code == 200, resp.text
    assert_conforms(resp, path)
    assert resp.json() == admin_get(stack, path).json()


def test_jobs_limit_is_one_bound_with_one_message(stack):
    from caesar_faas.jobs.control import MAX_LIMIT

    documented = {p["name"]: p for p in resolved(DOC["paths"]["/function/jobs"]["get"]["parameters"])}["limit"]
    assert documented["schema"]["maximum"] == MAX_LIMIT
    assert admin_get(stack, "/function/jobs", limit=str(MAX_LIMIT)).status_code == 200
    refusals = [admin_get(stack, "/function/jobs", limit=str(n)) for n in (MAX_LIMIT + 1, 1000, 1001, 0)]
    assert {r.status_code for r in refusals} == {400}
    assert len({json.dumps(r.json(), sort_keys=True) for r in refusals}) == 1, [r.text for r in refusals]
    assert str(MAX_LIMIT) in refusals[0].json()["status"]
    for resp in refusals:
        assert_conforms(resp, "/function/jobs")


def test_submit_schema_requires_the_input_as_the_route_does(stack):
    from openapi_schema_validator import OAS30Validator

    schema = OAS30Validator(resolved(DOC["components"]["schemas"]["SubmitRequest"]))
    some_id = str(uuid.uuid4())
    assert not schema.is_valid({"app": "sep"})
    assert schema.is_valid({"app": "sep", "data_inputs": some_id})
    assert schema.is_valid({"app": "sep", "job_inputs": {"inputfile": some_id}})
    resp = requests.post(stack.url + "/function/submit", json={"app": "sep"}, timeout=30,
                         headers={"Authorization": f"Bearer {stack.token('alice')}"})
    assert resp.status_code == 400 and resp.json()["option"] == "data_inputs"


def test_every_operation_with_auth_declares_its_401():
    for path, method in operations():
        op = DOC["paths"][path][method]
        needs_auth = any(op.get("security", DOC["security"]))
        assert not needs_auth or "401" in op["responses"], f"{method.upper()} {path}"


@pytest.mark.parametrize(("method", "url", "path", "status"), [
    ("get", "/function/accounting/limits/%0A", "/function/accounting/limits/{user}", 400),
    ("get", "/function/files/a%0Ab", "/function/files/{file_id}", 404),
    ("post", "/caesar/api/v1.0/job/%0A/cancel", "/caesar/api/v1.0/job/{job_id}/cancel", 404),
    ("put", "/storage/o/a%0Ab?expires=1&sig=x", "/storage/o/{key}", 403),
    ("options", "/storage/o/a%0Ab", "/storage/o/{key}", 204)])
def test_a_newline_in_a_path_parameter_reaches_the_route(stack, method, url, path, status):
    """werkzeug's path converter stopped at a newline, so such ids missed every route (the
    gateway's 404, not the function's answer nor caesar-rest's shape)."""
    resp = requests.request(method, stack.url + url, timeout=30,
                            headers={"Authorization": f"Bearer {stack.token('admin', ('admin',))}"})
    assert resp.status_code == status, resp.text
    assert_conforms(resp, path, method)
