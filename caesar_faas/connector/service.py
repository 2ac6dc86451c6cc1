"""Durable JetStream pull consumers, one per (function, subject) binding in stack.yml.

Messages of one binding are delivered one at a time, in order; bindings run concurrently.
Several connector replicas may share the durable consumers (JetStream balances them)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
import requests
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ..config import Settings
from ..events.bus import ensure_stream
from ..events.subjects import DEAD_PREFIX, STREAM
from ..internal_auth import auth_headers
from ..local.stack import Binding
from ..logs import bind, clear
from .delivery import ACK, NAK, backoff, dead_letter_body, judge, request_for
from .targets import target_url

log = logging.getLogger("caesar.connector")


def durable_name(binding: Binding) -> str:
    return f"{binding.function}--{binding.subject.replace('.', '_').replace('*', 'any').replace('>', 'all')}"


def consumer_config(binding: Binding) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable_name(binding), filter_subject=binding.subject, ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL, ack_wait=binding.ack_wait, max_deliver=binding.max_deliver + 1,
        max_ack_pending=100)


class Connector:
    def __init__(self, settings: Settings, bindings: list[Binding]) -> None:
        self.settings = settings
        self.bindings = bindings
        self.stopping = asyncio.Event()
        self.http = requests.Session()

    def invoke(self, binding: Binding, headers: dict[str, str], body: bytes) -> int | None:
        headers = {**headers, **auth_headers(self.settings)}
        try:
            resp = self.http.post(target_url(binding.function, self.settings.gateway_url), data=body,
                                  headers=headers, timeout=max(1.0, binding.ack_wait * 0.8))
        except requests.RequestException as exc:
            log.warning("%s <- %s: %s", binding.function, binding.subject, type(exc).__name__)
            return None
        return resp.status_code

    async def handle(self, js: Any, binding: Binding, msg: Any) -> None:
        meta = msg.metadata
        msg_id = (msg.headers or {}).get("Nats-Msg-Id")
        headers, body = request_for(msg.subject, msg.data, msg_id)
        clear()  # this binding's task: the context of the previous message must not linger
        about = headers.get("ce-subject")
        bind(request_id=headers.get("X-Request-Id"), event_id=headers.get("ce-id"), nats_subject=msg.subject,
             **{("job_id" if msg.subject.startswith("caesar.jobs.") else "file_id"): about})
        status = await asyncio.to_thread(self.invoke, binding, headers, body)
        outcome = judge(status, meta.num_delivered, binding.max_deliver)
        if outcome.action == ACK:
            await msg.ack()
            return
        if outcome.action == NAK:
            delay = backoff(meta.num_delivered)
            log.info("%s <- %s seq %s: %s, retry in %.0fs", binding.function, msg.subject,
                     meta.sequence.stream, outcome.reason, delay)
            await msg.nak(delay=delay)
            return
        log.warning("%s <- %s seq %s: %s; dead-lettered", binding.function, msg.subject, meta.sequence.stream,
                    outcome.reason)
        if outcome.dead_letter:
            await js.publish(DEAD_PREFIX + msg.subject, dead_letter_body(msg.subject, msg.data, outcome, meta),
                             headers={"Nats-Msg-Id": f"dead-{binding.function}-{meta.sequence.stream}"})
        await msg.term()

    async def consume(self, js: Any, binding: Binding) -> None:
        sub = await js.pull_subscribe(binding.subject, durable=durable_name(binding), stream=STREAM,
                                      config=consumer_config(binding))
        log.info("binding %s <- %s (durable %s)", binding.function, binding.subject, durable_name(binding))
        while not self.stopping.is_set():
            try:
                # One at a time: a larger batch makes nats-py wait for the batch to fill (up to
                # the timeout) when traffic is sparse, delaying every event by that much.
                msgs = await sub.fetch(batch=1, timeout=2)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except Exception as exc:  # noqa: BLE001 - reconnects are handled by nats-py; keep going
                log.warning("fetch for %s failed: %s", binding.function, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                try:
                    await self.handle(js, binding, msg)
                except Exception:  # noqa: BLE001 - one bad message must not stop the binding
                    log.exception("delivery to %s failed", binding.function)

    async def run(self) -> None:
        nc = await nats.connect(self.settings.nats_client_url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        js = nc.jetstream()
        await ensure_stream(js)
        tasks = [asyncio.create_task(self.consume(js, b)) for b in self.bindings]
        await self.stopping.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Every delivery has finished (acked or nak'ed) once the tasks return; drain() would
        # only wait for the idle pull requests to expire.
        await nc.close()
