"""The event connector against a real nats-server and a real HTTP target: ack on 2xx, nak with
backoff on 5xx or timeout, term and dead-letter on 4xx, dead-letter after max deliveries,
CloudEvents binary mode, a service token on every call."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator

import nats
import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from caesar_faas.config import load_settings
from caesar_faas.connector.delivery import ACK, NAK, TERM, backoff, judge, request_for
from caesar_faas.connector.service import Connector, durable_name
from caesar_faas.events.bus import ensure_stream
from caesar_faas.events.cloudevents import encode, make_event
from caesar_faas.local.stack import Binding
from tests.helpers import free_port, wait_for


class Target:
    """A function stand-in over real HTTP: answers from a script, records every call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.script: dict[str, list[int]] = {}
        self.delay: dict[str, float] = {}
        app = Flask("target")

        @app.post("/function/<name>")
        def call(name: str):
            key = request.headers.get("ce-subject") or json.loads(request.data or b"{}").get("key", "")
            self.calls.append({"name": name, "key": key, "headers": dict(request.headers), "body": request.data,
                               "at": time.monotonic()})
            time.sleep(self.delay.get(key, 0))
            statuses = self.script.get(key) or [200]
            return ("", statuses.pop(0) if len(statuses) > 1 else statuses[0])

        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls_for(self, key: str) -> list[dict]:
        return [c for c in self.calls if c["key"] == key]


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.server.shutdown()


@pytest.fixture
def connector(nats_url, target, monkeypatch):
    monkeypatch.setenv("CAESAR_NATS_URL", nats_url)
    monkeypatch.setenv("CAESAR_GATEWAY_URL", f"http://127.0.0.1:{target.port}")
    monkeypatch.setenv("CAESAR_JWT_SECRET", "connector-test-secret-of-more-than-32-bytes")
    subject = f"caesar.test.{uuid.uuid4().hex[:8]}"
    binding = Binding(function=f"fn{uuid.uuid4().hex[:6]}", subject=subject, max_deliver=3, ack_wait=2.0)
    conn = Connector(load_settings(), [binding])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(conn.run(),), daemon=True)
    thread.start()
    yield conn, binding
    loop.call_soon_threadsafe(conn.stopping.set)
    thread.join(timeout=10)


def publish(nats_url: str, subject: str, payload: bytes, msg_id: str) -> None:
    async def go():
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await ensure_stream(js)
        await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        await nc.close()

    asyncio.run(go())


def dead_letters(nats_url: str, subject: str) -> list[dict]:
    async def go():
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        sub = await js.pull_subscribe("caesar.dead." + subject, stream="CAESAR")
        out = []
        try:
            while True:
                out += [json.loads(m.data) for m in await sub.fetch(batch=10, timeout=0.5)]
        except TimeoutError:  # nats' TimeoutError, or a bare one from one path of fetch()
            pass
        await nc.close()
        return out

    return asyncio.run(go())


def consumer_state(nats_url: str, binding: Binding) -> dict:
    async def go():
        nc = await nats.connect(nats_url)
        info = await nc.jetstream().consumer_info("CAESAR", durable_name(binding))
        await nc.close()
        return {"ack_pending": info.num_ack_pending, "pending": info.num_pending,
                "redelivered": info.num_redelivered, "delivered": info.delivered.consumer_seq}

    return asyncio.run(go())


def settled(nats_url: str, binding: Binding) -> dict:
    """The consumer once nothing is in flight: acked or terminated, nothing left to deliver."""
    return wait_for(lambda: (st := consumer_state(nats_url, binding))["ack_pending"] == 0 and st["pending"] == 0
                    and st, timeout=60, message="the consumer to settle")


def event(subject: str, key: str) -> bytes:
    return encode(make_event(subject, {"key": key, "n": 1}, about=key))


def test_2xx_delivers_once_in_binary_mode_with_a_service_token(nats_url, target, connector):
    _, binding = connector
    publish(nats_url, binding.subject, event(binding.subject, "ok"), "m-ok")
    wait_for(lambda: target.calls_for("ok"), timeout=60, message="the call")
    call = target.calls_for("ok")[0]
    assert call["name"] == binding.function
    assert call["headers"]["Ce-Subject"] == "ok" and call["headers"]["Ce-Specversion"] == "1.0"
    assert call["headers"]["Ce-Type"] == "org.caesar." + binding.subject.removeprefix("caesar.")
    assert json.loads(call["body"]) == {"key": "ok", "n": 1}  # binary mode: the body is the data
    assert call["headers"]["Authorization"].startswith("Bearer ")
    state = settled(nats_url, binding)  # acked: nothing pending, never redelivered
    assert state["redelivered"] == 0 and state["delivered"] == 1 and len(target.calls_for("ok")) == 1


def test_5xx_is_retried_with_backoff_until_it_succeeds(nats_url, target, connector):
    _, binding = connector
    target.script["flaky"] = [503, 500, 200]
    publish(nats_url, binding.subject, event(binding.subject, "flaky"), "m-flaky")
    wait_for(lambda: len(target.calls_for("flaky")) == 3, timeout=60, message="three deliveries")
    times = [c["at"] for c in target.calls_for("flaky")]
    assert times[1] - times[0] >= backoff(1) * 0.9 and times[2] - times[1] >= backoff(2) * 0.9
    assert dead_letters(nats_url, binding.subject) == []


def test_4xx_is_terminated_and_dead_lettered(nats_url, target, connector):
    _, binding = connector
    target.script["poison"] = [400]
    publish(nats_url, binding.subject, event(binding.subject, "poison"), "m-poison")
    letters = wait_for(lambda: dead_letters(nats_url, binding.subject), timeout=60, message="a dead letter")
    assert letters[0]["subject"] == binding.subject and "400" in letters[0]["reason"]
    assert json.loads(letters[0]["payload"])["data"]["key"] == "poison"
    state = settled(nats_url, binding)  # terminated: not pending, not redelivered
    assert state["redelivered"] == 0 and len(target.calls_for("poison")) == 1


def test_always_failing_goes_to_dead_letter_after_max_deliveries(nats_url, target, connector):
    _, binding = connector
    target.script["down"] = [500]
    publish(nats_url, binding.subject, event(binding.subject, "down"), "m-down")
    letters = wait_for(lambda: dead_letters(nats_url, binding.subject), timeout=60, message="a dead letter")
    assert len(target.calls_for("down")) == binding.max_deliver
    assert "after 3 deliveries" in letters[0]["reason"]


def test_a_slow_function_counts_as_a_failure_and_is_retried(nats_url, target, connector):
    _, binding = connector
    target.delay["slow"] = binding.ack_wait  # longer than the connector's call timeout
    target.script["slow"] = [200]
    publish(nats_url, binding.subject, event(binding.subject, "slow"), "m-slow")
    wait_for(lambda: len(target.calls_for("slow")) >= 2, timeout=60, message="a retry after the timeout")


def test_minio_records_pass_through_as_they_are():
    record = {"EventName": "s3:ObjectCreated:Put", "Records": [{"s3": {"object": {"key": "files%2Fa"}}}]}
    headers, body = request_for("caesar.storage.events", json.dumps(record).encode(), "id-1")
    assert json.loads(body) == record and headers["X-Caesar-Subject"] == "caesar.storage.events"
    assert "ce-id" not in headers and headers["Nats-Msg-Id"] == "id-1"


@pytest.mark.parametrize(("status", "delivered", "action", "dead"), [
    (200, 1, ACK, False), (204, 5, ACK, False), (404, 1, TERM, True), (422, 1, TERM, True),
    (429, 1, NAK, False), (408, 1, NAK, False), (500, 1, NAK, False), (None, 2, NAK, False),
    (503, 3, TERM, True), (None, 3, TERM, True),
])
def test_judge(status, delivered, action, dead):
    outcome = judge(status, delivered, max_deliver=3)
    assert (outcome.action, outcome.dead_letter) == (action, dead)


def test_backoff_doubles_and_is_capped():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8] and backoff(30) == 60
