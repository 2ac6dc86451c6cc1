"""One job from input to products: the steps of ARCHITECTURE §6 with their progress milestones.

Progress: started 0 (sent by main.py before this module loads), input fetched 10, header
checked 15, each finder command up to 80, catalogue normalised 85, products written 90,
products uploaded 98, finished 100.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any

from ..apps.registry import get_app
from ..apps.spec import AppSpec
from ..gunzip import GzipError
from ..storage import open_storage
from ..storage.base import ObjectNotFound
from . import finders
from .background import in_thread, preload, start_preview
from .execute import DeadlineExceeded, run_commands
from .fetch import FetchedInput, fetch_input, fetch_input_url
from .finders import UsageError
from .fitsinfo import NotAnImage, read_image_header
from .jobenv import JobContext
from .outcome import Outcome, exit_code_of
from .provenance import build_provenance
from .status import StatusReporter

if TYPE_CHECKING:
    from .products import ProductSink

log = logging.getLogger("caesar_faas.runner.job")

COMMANDS_FROM, COMMANDS_TO = 15, 80


def load_adapter(spec: AppSpec) -> ModuleType:
    """The finder adapter module of an app that runs locally (apps/spec.py: local_entry)."""
    if not spec.local_entry:
        raise UsageError(f"app {spec.name!r} runs only from its container image ({spec.image}); "
                         "this runner cannot run it")
    return finders.load_adapter(spec.local_entry)


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise DeadlineExceeded("the job timeout expired")


def product_sink(ctx: JobContext) -> ProductSink:
    """Where products go: the presigned URLs when the backend gave them, else the storage."""
    from .products import StorageSink, UrlSink

    if ctx.transfer is not None:
        return UrlSink(ctx.transfer.product_urls)
    assert ctx.storage_url is not None  # jobenv requires one or the other
    return StorageSink(open_storage(ctx.storage_url), ctx.output_prefix)


def fetch(ctx: JobContext) -> FetchedInput:
    """The input, through the presigned URL when the backend gave one, else from the storage."""
    if ctx.transfer is not None:
        return fetch_input_url(ctx.transfer.input_url, ctx.workdir)
    assert ctx.storage_url is not None
    return fetch_input(ctx.storage_url, ctx.input_key, ctx.workdir)


class JobRun:
    def __init__(self, ctx: JobContext, reporter: StatusReporter, started: float) -> None:
        self.ctx = ctx
        self.reporter = reporter
        self.started = started  # time.monotonic() at runner start
        self.deadline = started + ctx.timeout
        self.uploaded: list[Path] = []

    def run(self) -> Outcome:
        """Run the job; never raises except Cancelled (SIGTERM). Always uploads at least job.log
        and manifest.json, so a failed job still tells its user why."""
        ctx = self.ctx
        # The per-command timeout covers the finder; this alarm covers the steps in between
        # (fetching, normalising, plotting), raising DeadlineExceeded wherever we are.
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, max(self.deadline - time.monotonic(), 0.001))
        try:
            try:
                outcome = self._steps()
            finally:  # the alarm is off before any handler below runs
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        except DeadlineExceeded as exc:
            outcome = Outcome.timeout(f"the job exceeded its timeout of {ctx.timeout:g} s ({exc})")
        except (UsageError, NotAnImage) as exc:
            outcome = Outcome.usage(str(exc))
        except ObjectNotFound:
            outcome = Outcome.usage(f"the input file {ctx.input_file_id} is no longer in storage")
        except GzipError as exc:
            outcome = Outcome.usage(f"the input is not a valid gzip FITS file ({exc})")
        except Exception as exc:  # noqa: BLE001 - any other failure is ours, not the user's
            log.exception("the job failed")
            outcome = Outcome.system(f"internal error: {type(exc).__name__}: {exc}")
        outcome.elapsed = time.monotonic() - self.started
        log.info("outcome: %s exit_code=%d error_class=%s elapsed=%.2fs: %s", outcome.state,
                 outcome.exit_code, outcome.error_class, outcome.elapsed, outcome.message)
        try:
            from .products import finish_uploads

            outcome.products = finish_uploads(product_sink(ctx), self.uploaded, ctx.log_path, ctx.products_dir)
        except Exception as exc:  # noqa: BLE001 - the products are lost, the outcome is not
            log.exception("uploading job.log and the manifest failed")
            if outcome.exit_code == 0:
                outcome = Outcome.system(f"uploading the products failed: {exc}")
                outcome.elapsed = time.monotonic() - self.started
        return outcome

    def _steps(self) -> Outcome:
        ctx = self.ctx
        for folder in (ctx.workdir, ctx.tmp_dir, ctx.products_dir):
            folder.mkdir(parents=True, exist_ok=True)
        spec = get_app(ctx.app)
        if spec is None:
            raise UsageError(f"unknown app {ctx.app!r}")
        adapter = load_adapter(spec)
        options = dict(ctx.options)

        fetched = fetch(ctx)
        log.info("input %s fetched: %d bytes%s, sha256 %s", ctx.input_file_id, fetched.stored_size,
                 " (gzip, decompressed)" if fetched.compressed else "", fetched.sha256)
        if ctx.input_sha256 and fetched.sha256 != ctx.input_sha256:
            # Stored bytes that are not the ones uploaded (damage at rest, or a client that
            # declared another file's checksum): no catalogue from them.
            raise UsageError(f"the input file's sha256 is {fetched.sha256}, not {ctx.input_sha256} as recorded "
                             "at upload: the stored file is damaged or its declared checksum is wrong; "
                             "upload it again")
        self.reporter.progress(10, "input fetched")

        hdu_index, header = read_image_header(fetched.path)
        adapter.check_image(header, options)
        self.reporter.progress(15, "image header checked")

        commands = adapter.argv(str(fetched.path), options, str(ctx.workdir))
        preview = start_preview(fetched.path, hdu_index)  # while the finder runs
        products = preload("caesar_faas.runner.products")
        # The VOTable's document around its rows, for the provenance the products will have (the
        # date aside), made while the finder runs: astropy's writer takes 50-100 ms.
        envelope = in_thread(lambda: products.result().prepare_envelope(header, self._provenance(spec, options,
                                                                                                 fetched)))

        def finished(index: int, total: int) -> None:
            percent = COMMANDS_FROM + (COMMANDS_TO - COMMANDS_FROM) * (index + 1) // total
            self.reporter.progress(percent, f"finder step {index + 1} of {total} finished")

        index, code = run_commands(commands, cwd=ctx.workdir, log_path=ctx.log_path, deadline=self.deadline,
                                   on_finished=finished)
        if code != 0:
            return Outcome.finder_exit(exit_code_of(code), f"{ctx.app} step {index + 1}")

        rows = adapter.read_catalog(str(ctx.workdir), str(fetched.path), options)
        self.reporter.progress(85, f"catalogue normalised: {len(rows)} sources")

        maps_of = getattr(adapter, "maps", None)
        maps = maps_of(str(ctx.workdir), options) if callable(maps_of) else {}
        write_catalog_products = products.result().write_catalog_products
        paths = write_catalog_products(rows, ctx.products_dir, image_path=fetched.path, hdu_index=hdu_index,
                                       header=header, provenance=self._provenance(spec, options, fetched),
                                       maps=maps, preview=preview, envelope=envelope)
        self.reporter.progress(90, "products written")

        products.result().upload_all(product_sink(ctx), paths)
        self.uploaded = paths
        self.reporter.progress(98, "products uploaded")
        return Outcome.success()

    def _provenance(self, spec: AppSpec, options: dict[str, Any], fetched: FetchedInput) -> dict[str, Any]:
        ctx = self.ctx
        return build_provenance(app=ctx.app, app_version=spec.version, job_id=ctx.job_id, options=options,
                                input_file_id=ctx.input_file_id, input_filename=ctx.input_filename,
                                input_sha256=fetched.sha256)
