"""Progress bars on stderr (tqdm), so stdout stays clean for --json. Shown when stderr is a
terminal, or when CAESAR_PROGRESS=1; never with progress=False."""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType
from typing import Any

from tqdm import tqdm


def enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    forced = os.environ.get("CAESAR_PROGRESS", "").lower()
    if forced in ("0", "false", "no"):
        return False
    return forced in ("1", "true", "yes") or sys.stderr.isatty()


class Bar:
    """Bytes sent or received; thread-safe (parts travel in parallel); update(-n) undoes a failed
    attempt's bytes."""

    def __init__(self, total: int, label: str, show: bool) -> None:
        self._lock = threading.Lock()
        self._bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                         disable=not show, file=sys.stderr, dynamic_ncols=True, leave=True)
        self.done = 0

    def update(self, n: int) -> None:
        with self._lock:
            self.done += n
            self._bar.update(n)

    def reset(self) -> None:
        with self._lock:
            self._bar.update(-self.done)
            self.done = 0

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def bar(total: int, label: str, progress: bool | None) -> Bar:
    return Bar(total, label, enabled(progress))


class JobBar:
    """A job's state and percent while `wait` holds: `sep 1b2c... RUNNING  42%|████    |`."""

    def __init__(self, label: str, show: bool) -> None:
        self._bar = tqdm(total=100, desc=label, disable=not show, file=sys.stderr, dynamic_ncols=True,
                         bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}")
        self._label = label

    def show(self, job: dict[str, Any]) -> None:
        self._bar.set_description_str(f"{self._label} {job.get('state', '?'):<9}", refresh=False)
        self._bar.n = max(0, min(100, int(job.get("progress") or 0)))
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()
