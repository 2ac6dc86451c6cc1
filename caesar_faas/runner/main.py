"""The runner's entry point: set up the log and the signal handlers, run the job, report the end.

Exit status: the finder's code (0 on success); see outcome.py for the whole rule."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from ..logs import bind
from .cancel import Cancelled, install_cancel_handler
from .jobenv import ContractError, load_context, workdir_from_env
from .joblog import setup_logging
from .outcome import EXIT_CANCELLED, Outcome, write_result
from .status import StatusReporter

FLUSH_TIMEOUT = 12.0  # seconds to wait for the last status events when NATS is slow or away


def skip_websocket_support(nats_url: str) -> None:
    """nats-py imports aiohttp (a tenth of a second) only for ws:// servers, and skips it when
    the import fails: for any other URL, make it fail in this process (the runner's own)."""
    if not nats_url.lower().startswith(("ws://", "wss://")) and "aiohttp" not in sys.modules:
        sys.modules["aiohttp"] = None  # type: ignore[assignment]


def main() -> int:
    started = time.monotonic()
    skip_websocket_support(os.environ.get("CAESAR_NATS_URL", ""))
    install_cancel_handler()
    workdir = workdir_from_env()
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "tmp").mkdir(exist_ok=True)
    log = setup_logging(workdir / "job.log" if workdir is not None else None)
    try:
        return _run(started, log)
    except Cancelled as exc:
        # The dispatcher already marked the job ABORTED: no final event, no products.
        log.warning("job cancelled (%s): finder stopped, exiting with %d", exc, EXIT_CANCELLED)
        return EXIT_CANCELLED
    finally:
        if workdir is not None:
            release_finder_resources(workdir)


def release_finder_resources(workdir: Path) -> None:
    """What a finder may leave outside the work folder (BANE's /dev/shm segments) goes with the
    job, however it ended; the local backend repeats this after killing a runner."""
    from ..apps.registry import get_app
    from .finders import cleanup_after

    try:
        spec = get_app(json.loads(os.environ.get("CAESAR_JOB", "{}")).get("app", ""))
    except (ValueError, AttributeError):
        return
    if spec is not None and spec.local_entry:
        cleanup_after(spec.local_entry, str(workdir))


TERMINATION_LOG = Path("/dev/termination-log")  # Kubernetes mounts it in every container


def write_termination_message(message: str, path: Path = TERMINATION_LOG) -> None:
    """In a Kubernetes pod, the outcome in words for the Job's status (the monitor shows it to the
    user): without it, FallbackToLogsOnError would show the last JSON log lines instead."""
    if not message or not path.exists():
        return
    try:
        path.write_text(message[:2000])
    except OSError:
        pass


def _run(started: float, log: logging.Logger) -> int:
    try:
        ctx = load_context()
    except ContractError as exc:
        log.error("cannot run: %s", exc)
        outcome = Outcome.system(str(exc))
        outcome.elapsed = time.monotonic() - started
        workdir = workdir_from_env()
        if workdir is not None:
            write_result(workdir, outcome.finished_data())
        return outcome.exit_code

    bind(job_id=ctx.job_id, app=ctx.app, user=ctx.owner, file_id=ctx.input_file_id)
    log.info("runner for job %s (app %s, owner %s), timeout %gs", ctx.job_id, ctx.app, ctx.owner, ctx.timeout)
    reporter = StatusReporter(ctx.job_id, ctx.owner, ctx.nats_client_url, key=ctx.job_key)
    reporter.started(f"{ctx.app} job started")
    try:
        from .job import JobRun  # imported late: astropy and matplotlib take a while to load

        outcome = JobRun(ctx, reporter, started).run()
    except Exception as exc:  # noqa: BLE001 - JobRun.run handles the job's own errors; this is a broken install
        log.exception("the runner could not run the job")
        outcome = Outcome.system(f"runner error: {type(exc).__name__}: {exc}")
        outcome.elapsed = time.monotonic() - started
    data = outcome.finished_data()
    write_result(ctx.workdir, data)
    write_termination_message(str(data.get("message") or ""))
    log.info("runner of job %s finished: %s, products %s", ctx.job_id, data.get("state"),
             ", ".join(data.get("products") or []) or "none")
    try:
        reporter.finished(data)
        if not reporter.close(FLUSH_TIMEOUT):
            log.warning("the final status event could not be published in %.0fs; result.json holds it",
                        FLUSH_TIMEOUT)
    except Cancelled:
        # The job is over and result.json says how; a cancel now only stops the waiting.
        log.warning("SIGTERM while publishing the final status; result.json holds the outcome")
    return outcome.exit_code
