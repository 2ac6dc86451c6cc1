"""Finder adapters: one module per locally runnable app (the spec's `local_entry`).

Each adapter module exposes:
    check_image(header: astropy.io.fits.Header, options: dict) -> None
        raise UsageError(message) when the image cannot be processed by this finder.
    argv(image_path: str, options: dict, workdir: str) -> list[list[str]]
        the command lines to run in order (argv lists, never shell strings); run each with
        cwd=workdir and the runner environment (runner/contract.py); non-zero exit = failure.
        May write small argument files into workdir.
    read_catalog(workdir: str, image_path: str, options: dict) -> list[dict]
        the finder's output as rows of caesar_faas.catalog.schema (normalised, ids from 1).
    maps(workdir: str, options: dict) -> dict[str, Path]   (optional)
        the maps the finder computed, by product name (runner/contract.py MAP_NAMES), that exist;
        the runner writes them as FITS products with the input's WCS.
    cleanup(workdir: str) -> None   (optional)
        remove what a run may leave outside the work folder when it was killed; call it after
        the finder processes have ended, whatever the outcome. Use cleanup_after() below.
`options` are the validated options (caesar_faas.apps.validation.validate_options).
Adapters are deterministic: the same image and options give the same catalogue.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from astropy.io import fits


class UsageError(Exception):
    """The input image or the options cannot be processed by this finder (error class "usage").
    The message is meant for the user: it says what is missing and how to fix it."""


_ENTRY_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def load_adapter(local_entry: str) -> ModuleType:
    """The adapter module named by an app spec's local_entry (e.g. "aegean")."""
    if not _ENTRY_RE.match(local_entry or "") or local_entry.endswith("_main"):
        raise ValueError(f"not a finder adapter name: {local_entry!r}")
    module = importlib.import_module(f".{local_entry}", __name__)
    for attr in ("check_image", "argv", "read_catalog"):
        if not callable(getattr(module, attr, None)):
            raise ValueError(f"finder adapter {local_entry} lacks {attr}()")
    return module


def cleanup_after(local_entry: str, workdir: str) -> None:
    """Run the adapter's cleanup for a finished or killed job; never raises (best effort)."""
    try:
        module = load_adapter(local_entry)
        if callable(getattr(module, "cleanup", None)):
            module.cleanup(workdir)
    except Exception:  # noqa: BLE001 - cleanup must not turn a result into a failure
        pass


def read_header(image_path: str) -> fits.Header:
    """The primary header of the input image; UsageError when the file is not FITS."""
    try:
        with fits.open(image_path, memmap=False, lazy_load_hdus=True) as hdul:
            return hdul[0].header.copy()
    except (OSError, ValueError, IndexError) as exc:
        raise UsageError(f"The input is not a readable FITS file ({exc}).") from exc
