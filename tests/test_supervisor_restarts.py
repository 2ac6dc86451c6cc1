"""Issue 18 item 4: the death of one child of `make run` (nats-server, gateway, connector, cron;
kill -9 or a clean exit) no longer stops the stack: the supervisor starts it again with backoff,
and the stack works afterwards. Only SIGINT/SIGTERM of the supervisor stop it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests

from tests.fixtures.stack import LocalStack
from tests.helpers import free_port, wait_for
from tests.samples import fits_bytes

CHILDREN = {"nats": "nats-server", "gateway": "caesar_faas.local.gateway", "connector": "caesar_faas.connector",
            "cron": "caesar_faas.local.cron"}


def children_of(pid: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) != pid or fields[0] == "Z":
            continue
        for name, mark in CHILDREN.items():
            if mark in cmdline:
                found[name] = int(entry.name)
    return found


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory):
    s = LocalStack(tmp_path_factory.mktemp("restarts"), free_port(), free_port())
    s.start()
    yield s
    s.stop()


def healthy(stack: LocalStack) -> bool:
    return requests.get(stack.url + "/healthz", timeout=2).status_code == 200


@pytest.mark.parametrize(("name", "sig"), [("connector", signal.SIGKILL), ("cron", signal.SIGTERM),
                                           ("nats", signal.SIGKILL), ("gateway", signal.SIGKILL),
                                           ("connector", signal.SIGTERM)])
def test_a_dead_child_is_started_again(own_stack: LocalStack, name: str, sig: int) -> None:
    """Before: the supervisor stopped the whole stack (and failed every running job)."""
    before = wait_for(lambda: (c := children_of(own_stack.proc.pid)) and len(c) == 4 and c, timeout=60,
                      message="four children")
    os.kill(before[name], sig)
    after = wait_for(lambda: (c := children_of(own_stack.proc.pid)).get(name) not in (None, before[name]) and c,
                     timeout=60, message=f"{name} started again")
    assert own_stack.proc.poll() is None
    assert {k: v for k, v in after.items() if k != name} == {k: v for k, v in before.items() if k != name}
    wait_for(lambda: healthy(own_stack), timeout=60, message="healthy again")

    # The whole chain still works: a presigned upload is registered through NATS, connector,
    # registrar (gateway).
    client = own_stack.client("yuri")
    data = fits_bytes((32, 32), seed=len(name))
    body = client.post(own_stack.url + "/function/upload", json={"filename": "r.fits", "size": len(data)}).json()
    assert requests.put(body["single"]["url"], data=data, timeout=30).status_code == 200
    wait_for(lambda: client.get(f"{own_stack.url}/function/files/{body['uuid']}").json()["state"] == "ready",
             timeout=60, message="registration after the restart")
