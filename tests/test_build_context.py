"""Each function's build context, assembled the way `faas-cli build --shrinkwrap` does
(ARCHITECTURE §2), starts its handler in a clean interpreter and answers over HTTP.

faas-cli 0.18 layout: build/<fn>/ = the template folder; build/<fn>/function/ = the handler
folder; every `configuration.copy` path lands at build/<fn>/function/<path>. The image runs
`python index.py` from /home/app (= build/<fn>), importing the handler as `function.handler`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from caesar_faas.local.stack import load_stack
from tests.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
STACK = load_stack(ROOT / "stack.yml")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def shrinkwrap(function: str, out: Path) -> Path:
    fn = STACK.functions[function]
    context = out / function
    shutil.copytree(ROOT / "template" / fn.lang, context, ignore=IGNORE)
    shutil.rmtree(context / "function")  # the template's sample handler is replaced
    shutil.copytree(fn.handler, context / "function", ignore=IGNORE)
    for path in STACK.copy:
        src = (ROOT / path).resolve()
        assert src.is_relative_to(ROOT), f"copy path {path} leaves the project"
        dest = context / "function" / path
        (shutil.copytree(src, dest, ignore=IGNORE) if src.is_dir() else shutil.copy2(src, dest))
    return context


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def secret():
    return "build-context-test-secret-of-32-bytes-or-more"


def start(context: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # -E: no PYTHONPATH, -s: no user site: only the build context and installed packages count.
    proc = subprocess.Popen([sys.executable, "-E", "-s", "index.py"], cwd=context,
                            env={**env, "FUNCTION_HOST": "127.0.0.1", "FUNCTION_PORT": str(port)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode())
        return requests.get(url + "/", timeout=1).status_code > 0

    wait_for(up, timeout=60, message=f"{context.name} to start")
    return proc, url


def token(secret: str, user: str, roles: list[str]) -> str:
    from caesar_faas.tokens import mint_token

    return mint_token(secret, user, roles, 600)


# (function, method, path, expected status for a user token)
PROBES = {
    "upload": ("POST", "/", 415),  # no multipart body
    "files": ("GET", "/", 200),
    "registrar": ("POST", "/", 403),  # internal: needs the system role
    "describe": ("GET", "/", 200),
    "submit": ("POST", "/", 400),  # empty body
    "status": ("GET", "/00000000-0000-4000-8000-000000000000", 404),
    "output": ("GET", "/00000000-0000-4000-8000-000000000000", 404),
    "cancel": ("POST", "/00000000-0000-4000-8000-000000000000", 404),
    "jobs": ("GET", "/", 200),
    "accounting": ("GET", "/", 200),
    "dispatcher": ("POST", "/", 403),
    "monitor": ("POST", "/", 403),
    "notifier": ("POST", "/", 403),  # internal: needs the system role
    "ui": ("GET", "/", 200),
    "uws": ("GET", "/sep/jobs", 200),  # an empty UWS job list
}


def test_every_function_in_stack_is_probed():
    assert set(PROBES) == set(STACK.functions)


@pytest.mark.parametrize("function", sorted(PROBES))
def test_function_starts_from_its_build_context(function, build_dir, secret, nats_url, tmp_path):
    context = shrinkwrap(function, build_dir)
    assert (context / "function" / "caesar_faas" / "__init__.py").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAESAR_", "PYTHON"))}
    env.update({"CAESAR_HOME": str(tmp_path), "CAESAR_JWT_SECRET": secret, "CAESAR_NATS_URL": nats_url})
    proc, url = start(context, env)
    try:
        method, path, expected = PROBES[function]
        anonymous = requests.request(method, url + path, timeout=10)
        # ui is public; monitor takes a cron trigger without credentials (and tells nothing).
        expected_anonymous = {"ui": 200, "monitor": 200}.get(function, 401)
        assert anonymous.status_code == expected_anonymous, anonymous.text
        resp = requests.request(method, url + path, timeout=10,
                                headers={"Authorization": f"Bearer {token(secret, 'alice', ['user'])}"})
        assert resp.status_code == expected, resp.text
        if resp.headers.get("Content-Type", "").startswith("application/json"):
            assert isinstance(resp.json(), dict)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_repository_package_is_not_importable_in_a_clean_interpreter(tmp_path):
    """So the functions above really imported the copy inside their build context."""
    probe = subprocess.run([sys.executable, "-E", "-s", "-c", "import caesar_faas"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr


def test_the_image_server_refuses_as_json(build_dir, secret, nats_url, tmp_path):
    """waitress in the image (index.py) answers its own refusals in the API's JSON shape, as the
    local gateway does (caesar_faas/serving.py): a body over its limit, a request that does not parse."""
    import http.client
    import json
    import socket

    context = shrinkwrap("submit", build_dir / "refusals")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAESAR_", "PYTHON"))}
    env.update({"CAESAR_HOME": str(tmp_path), "CAESAR_JWT_SECRET": secret, "CAESAR_NATS_URL": nats_url})
    proc, url = start(context, env)
    port = int(url.rsplit(":", 1)[1])
    try:
        for request, status in ((b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n", 413),
                                (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400)):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(request)
                reply = http.client.HTTPResponse(sock)
                reply.begin()
                assert reply.status == status
                assert reply.getheader("Content-Type") == "application/json"
                assert set(json.loads(reply.read())) == {"error", "status"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
