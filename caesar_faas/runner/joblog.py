"""The job's log: one file in the work folder (uploaded as job.log, readable text for the user)
plus the operator's JSON lines on stderr (and $CAESAR_LOG_DIR/runner.log when the backend sets it).

The finder's own stdout/stderr are appended to the same file by the executor, so every log
record is flushed at once (FileHandler does) to keep runner and finder lines in order. The copy
users download goes through user_text(): no terminal colour codes, no server paths."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from ..logs import bind, configure

LOGGER_NAME = "caesar_faas.runner"
FORMAT = "%(asctime)s %(levelname)s %(message)s"
# CSI sequences (colours, cursor moves), OSC sequences (titles, links) and lone escapes.
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


class _UserLog(logging.FileHandler):
    """The job.log handler (kept apart from configure()'s handlers)."""


def setup_logging(log_path: Path | None) -> logging.Logger:
    """Send the runner's records to log_path (append, text) and stderr (JSON); returns the
    runner's logger."""
    configure("runner", level=os.environ.get("CAESAR_LOG_LEVEL") or "INFO")
    bind(request_id=os.environ.get("CAESAR_REQUEST_ID") or None)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _UserLog)]:
        root.removeHandler(handler)
        handler.close()
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        formatter = logging.Formatter(FORMAT)
        formatter.default_msec_format = "%s.%03d"
        file_handler = _UserLog(log_path, mode="a", encoding="utf-8")
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    # nats-py logs a full traceback on every failed reconnect; the status reporter logs one
    # line per outage instead, so keep the job log readable.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    # Library chatter (matplotlib font cache, astropy) is not what a user reads the log for.
    for noisy in ("matplotlib", "PIL"):  # not "astropy": it installs its own Logger class on import
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(LOGGER_NAME)


def server_paths(workdir: Path) -> list[tuple[str, str]]:
    """(server path, what the user sees instead), longest first: the work folder is the job's
    own '.', the interpreter and the service's code and data folders are named, not shown."""
    package_root = Path(__file__).resolve().parents[2]
    pairs = {str(workdir.resolve()): ".", str(workdir): ".", sys.prefix: "<python>", sys.base_prefix: "<python>",
             str(package_root): "<caesar>", os.environ.get("CAESAR_HOME", ""): "<data>",
             os.environ.get("TMPDIR", ""): "<tmp>"}
    return sorted(((k, v) for k, v in pairs.items() if len(k) > 1), key=lambda kv: len(kv[0]), reverse=True)


def user_text(raw: str, workdir: Path) -> str:
    """The job log as users get it: no colour codes, no carriage-return redraws, no server paths."""
    text = ANSI.sub("", raw)
    text = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))
    for path, shown in server_paths(workdir):
        text = text.replace(path, shown)
    return text


def write_user_log(log_path: Path, dest: Path, workdir: Path) -> None:
    dest.write_text(user_text(log_path.read_text(encoding="utf-8", errors="replace"), workdir), encoding="utf-8")
