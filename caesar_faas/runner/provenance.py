"""Provenance written into catalog.vot and catalog.json: what ran, on what, with which software."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..ids import iso

# The Python distributions each local finder runs with (containers report their own image).
APP_PACKAGES = {"aegean": ("AegeanTools",), "pybdsf": ("bdsf",), "sep": ("sep",)}
COMMON_PACKAGES = ("numpy", "scipy", "astropy", "matplotlib")


def software_versions(packages: Iterable[str]) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def build_provenance(*, app: str, app_version: str, job_id: str, options: dict[str, Any],
                     input_file_id: str, input_filename: str, input_sha256: str,
                     extra_packages: Iterable[str] = ()) -> dict[str, Any]:
    packages = [*APP_PACKAGES.get(app, ()), *extra_packages, *COMMON_PACKAGES]
    return {
        "producer": "caesar-faas",
        "app": app,
        "app_version": app_version,
        "job_id": job_id,
        "options": options,
        "input_file_id": input_file_id,
        "input_filename": input_filename,
        "input_sha256": input_sha256,
        "software": software_versions(dict.fromkeys(packages)),
        "date": iso(),
    }
