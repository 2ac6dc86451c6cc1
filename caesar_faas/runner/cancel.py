"""SIGTERM means "cancel": the backend stops a job that way (local: killpg; Kubernetes: pod
deletion). The handler raises Cancelled in the main thread, wherever it is (waiting on the
finder, streaming the input, uploading), so the runner unwinds at once and kills its child."""

from __future__ import annotations

import signal
from types import FrameType


class Cancelled(BaseException):
    """Raised by the SIGTERM handler. A BaseException so that no `except Exception` swallows it."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Ignore further SIGTERMs (a killpg may deliver several) while we clean up.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Cancelled(f"received signal {signum}")


def install_cancel_handler() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
