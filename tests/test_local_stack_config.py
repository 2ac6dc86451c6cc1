"""stack.yml as the local stack reads it: ${VAR} substitution, bindings, cron schedules."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from caesar_faas.local.cronexpr import CronExpr
from caesar_faas.local.stack import load_stack, parse_duration, substitute

ROOT = Path(__file__).resolve().parents[1]


def test_substitution_like_faas_cli():
    env = {"REGISTRY": "reg.example.org/caesar", "EMPTY": ""}
    assert substitute("${REGISTRY}/upload:${TAG:-0.1.0}", env) == "reg.example.org/caesar/upload:0.1.0"
    assert substitute("${EMPTY:-fallback} ${MISSING}", env) == "fallback "


def test_bindings_and_schedules_come_from_the_annotations():
    stack = load_stack(ROOT / "stack.yml")
    bindings = {(b.function, b.subject) for b in stack.bindings()}
    assert bindings == {("dispatcher", "caesar.jobs.submitted"), ("dispatcher", "caesar.jobs.status"),
                        ("dispatcher", "caesar.jobs.cancel"), ("registrar", "caesar.storage.events"),
                        ("notifier", "caesar.jobs.finished")}
    assert [(s.function, s.cron) for s in stack.schedules()] == [("monitor", "* * * * *")]
    assert all(fn.handler.joinpath("handler.py").exists() for fn in stack.functions.values())


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("30s", 30), ("15m", 900), ("1h", 3600), ("7", 7)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("expr", "when", "hit"), [
    ("* * * * *", datetime(2026, 1, 1, 0, 0), True),
    ("*/15 * * * *", datetime(2026, 1, 1, 3, 45), True),
    ("*/15 * * * *", datetime(2026, 1, 1, 3, 46), False),
    ("0 2 * * 1-5", datetime(2026, 11, 23, 2, 0), True),  # a Monday
    ("0 2 * * 1-5", datetime(2026, 11, 22, 2, 0), False),  # a Sunday
    ("0 2 * * 0", datetime(2026, 11, 22, 2, 0), True),
    ("0 2 * * 7", datetime(2026, 11, 22, 2, 0), True),  # 7 is Sunday too
    ("5,10 * 1 1 *", datetime(2026, 1, 1, 9, 10), True),
])
def test_cron_matches(expr, when, hit):
    assert CronExpr(expr).matches(when) is hit


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"])
def test_invalid_cron_is_refused(bad):
    with pytest.raises(ValueError):
        CronExpr(bad)
