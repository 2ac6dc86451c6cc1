"""configure(): structlog and the standard library's logging, rendered the same way.

Every line, whether logged through structlog (`get_logger(...).info("job launched", pid=...)`)
or through `logging.getLogger(__name__)` (the libraries and most of the code), becomes one JSON
object on stderr: ts (ISO 8601 UTC), level, event, logger, the bound context (request_id,
function, user, job_id, file_id, app) and the line's own fields, secrets masked.
CAESAR_LOG_FORMAT=console renders coloured lines for a developer instead; CAESAR_LOG_LEVEL sets
the level; CAESAR_LOG_DIR (set by the local stack for runners) adds <dir>/<component>.log."""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

from .redact import Redactor

_lock = threading.Lock()
_configured: str | None = None
# Libraries whose INFO lines are noise in an operator's log (one line per HTTP connection...).
QUIET = ("urllib3", "botocore", "boto3", "s3transfer", "kubernetes", "nats", "waitress.queue", "matplotlib", "PIL")


FIRST = ("ts", "level", "event", "logger")


def _ordered(logger: Any, method: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """ts, level, event, logger first: what a reader scans for; the context after."""
    return {**{k: event[k] for k in FIRST if k in event}, **{k: v for k, v in event.items() if k not in FIRST}}


def renderer(fmt: str | None = None) -> Any:
    fmt = (fmt or os.environ.get("CAESAR_LOG_FORMAT", "") or "json").strip().lower()
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(timestamp_key="ts")
    return structlog.processors.JSONRenderer(default=str)


def formatter(fmt: str | None = None, redactor: Redactor | None = None, component: str | None = None) -> logging.Formatter:
    """The formatter of every handler configure() installs (JSON, or console). Lines logged
    through the standard library get the bound context and their `extra` fields here; lines of
    threads that bound nothing (the NATS loop, reapers) still name the component."""

    def _component(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if component:
            event.setdefault("function", component)
        return event

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
                           structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
                    structlog.processors.format_exc_info, _component, redactor or Redactor(), _ordered,
                    renderer(fmt)])


class _FormatOutsideTheLock:
    """handle() that renders the line without any lock and writes lines in batches: a thread
    that finds no write in progress writes every line waiting (its own and those other threads
    queued meanwhile); a thread that finds one queues its line and goes on. The stdlib holds the
    handler's lock for the rendering and the write, so at 16 request threads that lock was a queue
    where every waiter gave the GIL away (a sixth of a status request's time in the gateway).
    Lines keep their order; each is written before its call returns unless another thread is
    writing at that moment, which then writes it too."""

    def createLock(self) -> None:  # noqa: N802 - logging's name
        super().createLock()  # type: ignore[misc]
        self._waiting: collections.deque[tuple[str, logging.LogRecord]] = collections.deque()
        self._writing = threading.Lock()

    def _at_fork_reinit(self) -> None:
        super()._at_fork_reinit()  # type: ignore[misc]
        self._writing = threading.Lock()  # a writer of the parent is not in the child

    def handle(self, record: logging.LogRecord) -> bool:
        handler: Any = self
        if not handler.filter(record):
            return False
        try:
            text = handler.format(record) + handler.terminator
        except Exception:  # noqa: BLE001 - what logging does with a line it cannot render
            handler.handleError(record)
            return True
        waiting, writing = self._waiting, self._writing
        waiting.append((text, record))
        # A line queued while another thread writes is seen by that thread's next look, which
        # comes after it lets go of the lock: no line is left behind.
        while waiting and writing.acquire(blocking=False):
            try:
                self._write_waiting(waiting)
            finally:
                writing.release()
        return True

    def _write_waiting(self, waiting: collections.deque[tuple[str, logging.LogRecord]]) -> None:
        handler: Any = self
        batch: list[tuple[str, logging.LogRecord]] = []
        while waiting:
            batch.append(waiting.popleft())
        with handler.lock:  # setStream, close and flush take it too
            try:
                stream = handler.stream
                if stream is None:  # a FileHandler opened lazily
                    stream = handler.stream = handler._open()
                stream.write("".join(text for text, _ in batch))
                stream.flush()
            except Exception:  # noqa: BLE001
                handler.handleError(batch[-1][1])


class _CaesarHandler(_FormatOutsideTheLock, logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handlers configure() installed (replaced on a second call, others kept)."""


class _CaesarFileHandler(_FormatOutsideTheLock, logging.FileHandler):
    pass


def configure(component: str, *, level: str | None = None, stream: Any = None,
              log_dir: str | Path | None = None) -> None:
    """Set up logging for this process as `component` (bound as `function` on every line)."""
    global _configured
    with _lock:
        redactor = Redactor()
        structlog.configure(
            processors=[structlog.contextvars.merge_contextvars, structlog.stdlib.filter_by_level,
                        structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                        structlog.stdlib.PositionalArgumentsFormatter(), structlog.processors.StackInfoRenderer(),
                        structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, _CaesarHandler | _CaesarFileHandler)]:
            root.removeHandler(handler)
            handler.close()
        out = _CaesarHandler(stream or sys.stderr)
        out.setFormatter(formatter(redactor=redactor, component=component))
        root.addHandler(out)
        folder = log_dir if log_dir is not None else os.environ.get("CAESAR_LOG_DIR", "").strip()
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            # O_APPEND: lines of several processes appending to one file stay whole.
            to_file = _CaesarFileHandler(Path(folder) / f"{component}.log", mode="a", encoding="utf-8")
            to_file.setFormatter(formatter("json", redactor, component))
            root.addHandler(to_file)
        root.setLevel((level or os.environ.get("CAESAR_LOG_LEVEL", "") or "INFO").upper())
        for name in QUIET:
            logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
        logging.captureWarnings(True)  # library warnings become JSON lines too, not raw stderr text
        structlog.contextvars.bind_contextvars(function=component)
        _configured = component


def get_logger(name: str) -> Any:
    """A structlog logger (fields as keyword arguments) that goes through the same handlers."""
    return structlog.get_logger(name)


def configured() -> str | None:
    return _configured
