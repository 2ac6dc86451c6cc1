"""Five-field cron expressions (minute hour day-of-month month day-of-week), as the OpenFaaS
cron-connector reads them: numbers, `*`, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`."""

from __future__ import annotations

from datetime import datetime

_FIELDS = [("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6)]


def _parse_field(text: str, low: int, high: int, name: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"cron {name}: step must be >= 1")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(base)
            if step_text:
                end = high
        if name == "weekday" and end == 7:  # cron allows 7 for Sunday (= 0)
            values.add(0)
            if start == 7:
                continue
            end = 6
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ValueError(f"cron {name}: {part!r} outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


class CronExpr:
    def __init__(self, expr: str) -> None:
        fields = expr.split()
        if len(fields) != 5:
            raise ValueError(f"cron expression needs 5 fields, got {len(fields)}: {expr!r}")
        try:
            self.sets = [_parse_field(f, lo, hi, name) for f, (name, lo, hi) in zip(fields, _FIELDS, strict=True)]
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {expr!r}: {exc}") from exc
        self.expr = expr

    def matches(self, when: datetime) -> bool:
        minute, hour, day, month, weekday = self.sets
        # cron counts Sunday as 0, Python's weekday() Monday as 0.
        return (when.minute in minute and when.hour in hour and when.day in day and when.month in month
                and (when.isoweekday() % 7) in weekday)
