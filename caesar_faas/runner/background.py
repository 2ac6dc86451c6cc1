"""Work the runner does beside the finder (a separate process), so a short finder run does not
wait for it afterwards: the preview's pixels, and the imports only the products need."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..catalog.preview import Prepared

T = TypeVar("T")


def in_thread(fn: Callable[..., T], *args: Any) -> Future[T]:
    """fn(*args) in a daemon thread (a job that fails or is cancelled meanwhile does not wait
    for it to exit); its result or exception through the Future."""
    future: Future[T] = Future()

    def work() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever asks for the result
            future.set_exception(exc)

    threading.Thread(target=work, name="runner-background", daemon=True).start()
    return future


def start_preview(image_path: Path, hdu_index: int) -> Future[Prepared]:
    """Prepare the preview's pixels: reading and reducing the image overlaps the finder, so
    only the marks are left for after it. The preview module (matplotlib, WCS axes) is imported
    in that thread too, beside the finder, never on the way to it."""

    def work() -> Prepared:
        from ..catalog.preview import prepare

        return prepare(image_path, hdu_index)

    return in_thread(work)


def preload(module: str) -> Future[Any]:
    """Import `module` now in the background (astropy.table and the VOTable writer take a while);
    the import lock makes a later `import` of it wait for this one, never run it twice."""
    return in_thread(importlib.import_module, module)
