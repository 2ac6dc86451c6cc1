"""Issue 18 item 6: NATS needs credentials, and a status event changes a job only when it is
signed with that job's key (which only its runner holds). Before: any local process could publish
a `finished` event and set another user's job to FAILURE."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats
import pytest

from caesar_faas.events.cloudevents import encode, make_event
from caesar_faas.events.subjects import JOBS_STATUS
from caesar_faas.ids import new_id
from caesar_faas.jobs.status_auth import sign
from tests.fixtures.stack import LocalStack
from tests.helpers import free_port, wait_for
from tests.samples import fits_bytes


@pytest.fixture(scope="module")
def fake_stack(tmp_path_factory: pytest.TempPathFactory):
    s = LocalStack(tmp_path_factory.mktemp("natsauth"), free_port(), free_port(),
                   extra_env={"CAESAR_RUNNER_MODULE": "tests.fixtures.fake_runner"})
    s.start()
    yield s
    s.stop()


def test_nats_refuses_clients_without_the_token(fake_stack: LocalStack) -> None:
    async def connect() -> None:
        nc = await nats.connect(f"nats://127.0.0.1:{fake_stack.nats_port}", allow_reconnect=False,
                                max_reconnect_attempts=0, connect_timeout=5)
        await nc.close()

    with pytest.raises(Exception) as info:  # noqa: B017 - nats-py raises its own error types
        asyncio.run(connect())
    assert "authorization" in str(info.value).lower() or "no servers" in str(info.value).lower()
    assert oct((fake_stack.home / "nats.token").stat().st_mode & 0o777) == "0o600"


def forge_and_wait_dead_letters(stack: LocalStack, events: list[dict[str, Any]]) -> list[bytes]:
    """Publish with the NATS token (any local process that can read CAESAR_HOME could) and return
    the dead letters the connector writes for them."""

    async def run() -> list[bytes]:
        nc = await nats.connect(stack.nats_url)
        letters: list[bytes] = []

        async def keep(msg: Any) -> None:
            letters.append(msg.data)

        await nc.subscribe("caesar.dead.>", cb=keep)
        js = nc.jetstream()
        for data in events:
            event = make_event(JOBS_STATUS, data, about=data["job_id"])
            await js.publish(JOBS_STATUS, encode(event), headers={"Nats-Msg-Id": event["id"]})
        for _ in range(600):
            if len(letters) >= len(events):
                break
            await asyncio.sleep(0.05)
        await nc.close()
        return letters

    return asyncio.run(run())


def test_unsigned_or_foreign_status_events_change_nothing(fake_stack: LocalStack) -> None:
    stack = fake_stack
    client = stack.client("zoe")
    up = client.post(stack.url + "/function/upload", files={"file": ("a.fits", fits_bytes((32, 32)))})
    assert up.status_code == 201, up.text
    job_id = client.post(stack.url + "/function/submit", json={"app": "sep", "data_inputs": up.json()["uuid"]}
                         ).json()["job_id"]
    wait_for(lambda: client.get(f"{stack.url}/function/status/{job_id}").json()["state"] == "RUNNING",
             timeout=60, message="running")

    finished = {"job_id": job_id, "owner": "zoe", "seq": 99, "phase": "finished", "progress": 100,
                "message": "forged", "state": "FAILURE", "exit_code": 1, "error_class": "usage"}
    other_key = "0" * 64  # a key, but not this job's
    letters = forge_and_wait_dead_letters(stack, [finished, sign(other_key, finished),
                                                  {**sign(other_key, finished), "job_id": new_id()}])
    assert len(letters) == 3
    assert all(b"unsigned_status" in letter or b"403" in letter for letter in letters), letters
    status = client.get(f"{stack.url}/function/status/{job_id}").json()
    assert status["state"] == "RUNNING" and status["status"] != "forged"

    # The runner's own (signed) events still apply.
    workdir = stack.home / "jobs" / job_id
    (workdir / "go.tmp").write_text(json.dumps({"state": "SUCCESS", "exit_code": 0}))
    (workdir / "go.tmp").replace(workdir / "go")
    done = wait_for(lambda: (s := client.get(f"{stack.url}/function/status/{job_id}").json())["state"]
                    not in ("RUNNING", "STARTED") and s, timeout=60, message="job end")
    assert done["state"] == "SUCCESS"
