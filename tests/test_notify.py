"""Notifications (issue 17 §4) at the library level: what submit accepts as a target (SSRF
refusals), and the notifier's at-most-once delivery against a real webhook receiver and a real
SMTP server (aiosmtpd) on loopback, with a real SQLite store."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest

from caesar_faas.config import load_settings
from caesar_faas.errors import BadRequest
from caesar_faas.jobs.records import new_job, public_view
from caesar_faas.notify import deliver, webhook
from caesar_faas.notify.settings import NotifySettings
from caesar_faas.notify.targets import TargetRefused, check_webhook, parse_notify

SECRET = "test-webhook-secret-0123456789abcdef"
JOB_ID = "5d7c3a1e-0b9f-4c2d-8e6a-1f2b3c4d5e6f"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/hook", "http://10.1.2.3/",
    "http://192.168.0.10/", "http://172.16.5.4/", "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/", "http://100.64.0.1/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/",
    "http://2130706433/", "http://0x7f000001/", "http://224.0.0.1/",
])
def test_non_public_webhook_targets_are_refused(url):
    with pytest.raises(TargetRefused):
        check_webhook(url, frozenset())


@pytest.mark.parametrize("url", [
    "ftp://example.org/x", "file:///etc/passwd", "gopher://example.org/", "javascript:alert(1)",
    "https://user:pw@example.org/hook", "http:///nohost", "https://exa mple.org/", "http://host:99999/",
    "https://example.org/" + "a" * 3000, "http://no-such-host.invalid/hook",
])
def test_malformed_or_unsupported_webhook_urls_are_refused(url):
    with pytest.raises(TargetRefused):
        check_webhook(url, frozenset())


def test_public_address_and_allowed_hosts_pass():
    check_webhook("https://93.184.215.14/hook", frozenset())  # a literal public address: no DNS needed
    check_webhook("http://127.0.0.1:9/hook", frozenset({"127.0.0.1"}))
    check_webhook("http://LOCALHOST:9/hook", frozenset({"localhost"}))
    with pytest.raises(TargetRefused):  # the allow list names hosts, not schemes
        check_webhook("ftp://127.0.0.1/", frozenset({"127.0.0.1"}))


@pytest.mark.parametrize("raw", [
    "https://example.org", ["https://93.184.215.14/"], {"webhook": 5}, {"email": "not an address"},
    {"email": "a@b.org\r\nBcc: victim@example.org"}, {"email": "Alice <alice@example.org>"},
    {"sms": "+390000"}, {"webhook": "http://127.0.0.1/"},
])
def test_parse_notify_refuses_bad_input_with_400(raw):
    with pytest.raises(BadRequest) as info:
        parse_notify(raw, frozenset())
    assert info.value.http_status == 400 and info.value.extra["option"] == "notify"


def test_parse_notify_keeps_what_it_checked():
    assert parse_notify(None, frozenset()) is None
    assert parse_notify({}, frozenset()) is None
    assert parse_notify({"webhook": "http://127.0.0.1:9/x", "email": "alice@example.org"},
                        frozenset({"127.0.0.1"})) == {"webhook": "http://127.0.0.1:9/x", "email": "alice@example.org"}


# --- delivery --------------------------------------------------------------------------------

def _config(**changes):
    base = NotifySettings(webhook_secret=SECRET, webhook_allow=frozenset({"127.0.0.1"}), webhook_timeout=5.0,
                          smtp_url=None, mail_from="caesar@test.example", max_attempts=5)
    return replace(base, **changes)


def _ended_job(store, notify, state="SUCCESS", job_id=JOB_ID):
    job = new_job(job_id=job_id, owner="alice", app="sep", tag="run7", options={}, job_inputs={},
                  input_ref={"file_id": "f", "key": "k", "filename": "x.fits"}, timeout=60, now=1000.0)
    job.update(state=state, finished=1010.0, elapsed=10.0, expires=99999.0, status="Completed",
               products=["catalog.csv"], notify=notify, notify_pending=True)
    store.insert("jobs", job)
    return job


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CAESAR_HOME", str(tmp_path))
    monkeypatch.setenv("CAESAR_PUBLIC_URL", "https://caesar.example.org")
    return load_settings()


def test_webhook_gets_one_signed_cloudevent_even_when_delivered_twice(sqlite_store, settings, webhook_receiver):
    _ended_job(sqlite_store, {"webhook": webhook_receiver.url("/hook")})
    first = deliver.on_finished(sqlite_store, settings, _config(), JOB_ID)
    second = deliver.on_finished(sqlite_store, settings, _config(), JOB_ID)
    assert first["channels"] == {"webhook": "sent"} and not first["retry"]
    assert second["channels"] == {"webhook": "sent"}
    (got,) = webhook_receiver.for_path("/hook")
    assert webhook.verify(SECRET, got.body, got.headers["X-Caesar-Signature"])
    assert not webhook.verify("another-secret", got.body, got.headers["X-Caesar-Signature"])
    event = json.loads(got.body)
    assert got.headers["Content-Type"] == "application/cloudevents+json"
    assert event["type"] == "org.caesar.jobs.finished" and event["id"] == f"{JOB_ID}-SUCCESS"
    assert event["data"]["state"] == "SUCCESS" and event["data"]["tag"] == "run7"
    assert event["data"]["links"]["output"] == f"https://caesar.example.org/function/output/{JOB_ID}"
    record = sqlite_store.get("jobs", JOB_ID)
    assert record["notify_pending"] is False and record["notified_webhook"]["attempts"] == 1
    assert public_view(record)["notifications"]["webhook"]["status"] == "sent"


def test_concurrent_deliveries_send_once(sqlite_store, settings, webhook_receiver):
    _ended_job(sqlite_store, {"webhook": webhook_receiver.url("/hook")})
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        deliver.on_finished(sqlite_store, settings, _config(), JOB_ID)["channels"]["webhook"])) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(webhook_receiver.for_path("/hook")) == 1
    assert results.count("sent") >= 1 and set(results) <= {"sent", "busy"}


def test_500_is_retried_then_sent_and_a_4xx_or_redirect_is_not(sqlite_store, settings, webhook_receiver):
    webhook_receiver.fail_first["/flaky"] = 2
    _ended_job(sqlite_store, {"webhook": webhook_receiver.url("/flaky")})
    outcomes = [deliver.on_finished(sqlite_store, settings, _config(), JOB_ID) for _ in range(3)]
    assert [o["channels"]["webhook"] for o in outcomes] == ["retry", "retry", "sent"]
    assert [o["retry"] for o in outcomes] == [True, True, False]
    bodies = {r.body for r in webhook_receiver.for_path("/flaky")}
    assert len(webhook_receiver.for_path("/flaky")) == 3
    assert {json.loads(b)["id"] for b in bodies} == {f"{JOB_ID}-SUCCESS"}  # receivers can drop repeats

    for path, status in (("/gone", 410), ("/moved", 302)):
        webhook_receiver.status_for[path] = status
        job_id = f"{JOB_ID[:-2]}{status % 100:02d}"
        _ended_job(sqlite_store, {"webhook": webhook_receiver.url(path)}, job_id=job_id)
        assert deliver.on_finished(sqlite_store, settings, _config(), job_id)["channels"] == {"webhook": "refused"}
        assert deliver.on_finished(sqlite_store, settings, _config(), job_id)["channels"] == {"webhook": "refused"}
        assert len(webhook_receiver.for_path(path)) == 1
    assert not webhook_receiver.for_path("/redirected")  # the redirect was not followed


def test_a_failing_target_is_given_up_after_max_attempts(sqlite_store, settings, webhook_receiver):
    webhook_receiver.status_for["/down"] = 503
    _ended_job(sqlite_store, {"webhook": webhook_receiver.url("/down")})
    seen = [deliver.on_finished(sqlite_store, settings, _config(max_attempts=3), JOB_ID)["channels"]["webhook"]
            for _ in range(5)]
    assert seen == ["retry", "retry", "failed", "failed", "failed"]
    assert len(webhook_receiver.for_path("/down")) == 3
    assert sqlite_store.get("jobs", JOB_ID)["notify_pending"] is False


def test_a_target_not_allowed_any_more_is_refused_at_delivery(sqlite_store, settings, webhook_receiver):
    _ended_job(sqlite_store, {"webhook": webhook_receiver.url("/hook")})
    outcome = deliver.on_finished(sqlite_store, settings, _config(webhook_allow=frozenset()), JOB_ID)
    assert outcome["channels"] == {"webhook": "refused"}
    assert not webhook_receiver.requests


def test_mail_goes_through_smtp_once_and_the_webhook_is_not_resent(sqlite_store, settings, webhook_receiver,
                                                                     smtp_server):
    _ended_job(sqlite_store, {"webhook": webhook_receiver.url("/hook"), "email": "alice@example.org"},
               state="FAILURE")
    down = _config(smtp_url="smtp://127.0.0.1:9")  # nothing listens there: retried
    assert deliver.on_finished(sqlite_store, settings, down, JOB_ID)["channels"] == {"webhook": "sent",
                                                                                      "email": "retry"}
    config = _config(smtp_url=smtp_server.url)
    assert deliver.on_finished(sqlite_store, settings, config, JOB_ID)["channels"] == {"webhook": "sent",
                                                                                        "email": "sent"}
    deliver.on_finished(sqlite_store, settings, config, JOB_ID)
    assert len(webhook_receiver.for_path("/hook")) == 1
    (message,) = smtp_server.box.messages
    assert smtp_server.box.envelopes == [("caesar@test.example", ["alice@example.org"])]
    assert message["To"] == "alice@example.org" and JOB_ID in message["Subject"] and "FAILURE" in message["Subject"]
    assert f"https://caesar.example.org/function/status/{JOB_ID}" in message.get_payload(decode=True).decode()


def test_jobs_without_notify_or_not_ended_are_ignored(sqlite_store, settings):
    _ended_job(sqlite_store, None)
    assert deliver.on_finished(sqlite_store, settings, _config(), JOB_ID)["action"] == "ignored"
    assert deliver.on_finished(sqlite_store, settings, _config(), "00000000-0000-4000-8000-000000000000")[
        "action"] == "ignored"
