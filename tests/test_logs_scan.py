"""Runs last (tests/fixtures/logscan.py): every log that the session's local stacks wrote —
gateway, connector, cron, runner, each job's runner output and job.log — holds no token,
signature, secret or presigned query string, and every line of the service's own logs is one
JSON object. nats-server's log is its own text format and only scanned for secrets."""

from __future__ import annotations

import json
import re

import pytest

from tests.fixtures.logscan import log_files, stack_homes

LEAKS = {
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "a bearer token": re.compile(r"(?i)bearer\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}"),
    "an S3 presigned signature": re.compile(r"X-Amz-(Signature|Credential|Security-Token)=(?!\[redacted\])"),
    "a local signed URL": re.compile(r"[?&]sig=(?!\[redacted\])[0-9a-f]{8,}"),
    "a password in a URL": re.compile(r"://[^/\s:@\[\]\"']+:(?!\[redacted\])[^/\s@\"']+@"),
    "a token in a URL": re.compile(r"://(?!\[redacted\])[^/\s:@\[\]\"']{16,}@"),
}
SECRET_FILES = ("jwt.secret", "signing.key", "webhook.secret", "nats.token")


def known_secrets(home) -> dict[str, str]:
    found = {name: (home / name).read_text().strip() for name in SECRET_FILES if (home / name).exists()}
    from tests import test_notify, test_stack_ops

    found.update({"the ops webhook secret": test_stack_ops.SECRET, "the notify test secret": test_notify.SECRET})
    return {name: value for name, value in found.items() if len(value) >= 8}


def test_no_secret_in_any_log_of_the_stack_tests(tmp_path_factory):
    homes = stack_homes(tmp_path_factory.getbasetemp())
    if not homes:
        pytest.skip("no local stack ran in this session")
    problems, scanned = [], 0
    for home in homes:
        secrets = known_secrets(home)
        for path in log_files(home):
            text = path.read_text(errors="replace")
            scanned += 1
            for what, pattern in LEAKS.items():
                if (found := pattern.search(text)) is not None:
                    problems.append(f"{path}: {what}: ...{text[max(0, found.start() - 60):found.end() + 20]!r}")
            for what, value in secrets.items():
                if value in text:
                    problems.append(f"{path}: {what}")
    assert scanned >= len(homes)
    assert not problems, "\n".join(problems[:20])


def test_every_service_log_line_is_json(tmp_path_factory):
    homes = stack_homes(tmp_path_factory.getbasetemp())
    if not homes:
        pytest.skip("no local stack ran in this session")
    bad = []
    for home in homes:
        for path in sorted((home / "logs").glob("*.log")):
            if path.name == "nats.log":
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                try:
                    doc = json.loads(line)
                    assert {"ts", "level", "event", "logger"} <= set(doc)
                except (ValueError, AssertionError):
                    bad.append(f"{path}:{number}: {line[:160]!r}")
    assert not bad, "\n".join(bad[:20])
