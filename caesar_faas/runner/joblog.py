"""The job's log: one file in the work folder (uploaded as job.log) plus stderr for the backend.

The finder's own stdout/stderr are appended to the same file by the executor, so every log
record is flushed at once (FileHandler does) to keep runner and finder lines in order."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "caesar_faas.runner"
FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging(log_path: Path | None) -> logging.Logger:
    """Send the runner's records to log_path (append) and stderr; returns the runner's logger."""
    formatter = logging.Formatter(FORMAT)
    formatter.default_msec_format = "%s.%03d"
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(formatter)
    root.addHandler(stream)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_path, mode="a", encoding="utf-8")
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    # nats-py logs a full traceback on every failed reconnect; the status reporter logs one
    # line per outage instead, so keep the job log readable.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    # Library chatter (matplotlib font cache, astropy) is not what a user reads the log for.
    for noisy in ("matplotlib", "PIL"):  # not "astropy": it installs its own Logger class on import
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(LOGGER_NAME)
