"""Aegean adapter: BANE (background and noise maps), then aegean (find and fit), one core each.

The beam and the BANE grid/box are always passed explicitly, computed from the header or the
options, so the run never depends on what each tool would guess (BANE would assume 4 pixels per
beam on an image without BMAJ, even when the user gave the beam). Both tools are started through
this interpreter, so they need no PATH and run with the numpy that was tested: aegean as
`python -P -c "...main()"` (its console script has no `__main__` module for -m), BANE through
bane_main.py, which fixes the name of BANE's /dev/shm segments so cleanup() can remove them when
a cancelled job was killed before BANE could.
"""

from __future__ import annotations

import math
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from astropy.io import fits
from astropy.table import Table

from ...catalog.schema import normalise_row, source_name
from .argsfile import entry_argv
from .fitsinfo import beam_for, beam_pixels, image_info

BANE_BASE = "bane"  # BANE writes bane_bkg.fits and bane_rms.fits
TABLE = "aegean.fits"  # aegean writes the components to aegean_comp.fits
COMPONENTS = "aegean_comp.fits"
SHM_DIR = Path("/dev/shm")


def check_image(header: fits.Header, options: dict[str, Any]) -> None:
    image_info(header)
    beam_for(header, options)


def argv(image_path: str, options: dict[str, Any], workdir: str) -> list[list[str]]:
    image = os.path.abspath(image_path)  # absolute: a path never looks like an option
    header = fits.getheader(image)
    info = image_info(header)
    beam = beam_for(header, options)
    out = Path(workdir).resolve()  # the commands run with cwd=workdir: no relative paths
    force_rms, force_bkg = options.get("forcerms"), options.get("forcebkg")
    commands: list[list[str]] = []

    run_bane = force_rms is None or force_bkg is None
    if run_bane:
        bmaj_pix, bmin_pix = beam_pixels(info, beam)
        # BANE's own default: a grid of 4 beam widths and a box of 6 grid steps.
        width = round(4 * math.sqrt(bmaj_pix * bmin_pix), 6)  # round: 40.0000001 must not become 41
        grid = options.get("bane_grid") or max(2, int(math.ceil(width)))
        box = options.get("bane_box") or 6 * grid
        grid = min(grid, box)  # a box given alone may be smaller than the default grid
        commands.append(entry_argv("bane_main", shm_id(workdir)) + [
            "--cores", "1", "--grid", str(grid), str(grid), "--box", str(box), str(box),
            "--out", str(out / BANE_BASE), image])

    cmd = _cli("AegeanTools.CLI.aegean") + [
        "--cores", "1",
        "--beam", repr(beam.bmaj), repr(beam.bmin), repr(beam.bpa),
        "--seedclip", repr(float(options["seedclip"])),
        "--floodclip", repr(float(options["floodclip"])),
        "--table", str(out / TABLE),
    ]
    if force_bkg is None:
        cmd += ["--background", str(out / f"{BANE_BASE}_bkg.fits")]
    else:
        cmd += ["--forcebkg", repr(float(force_bkg))]
    if force_rms is None:
        cmd += ["--noise", str(out / f"{BANE_BASE}_rms.fits")]
    else:
        cmd += ["--forcerms", repr(float(force_rms))]
    if options.get("maxsummits") is not None:
        cmd += ["--maxsummits", str(int(options["maxsummits"]))]
    if options.get("nocov"):
        cmd.append("--nocov")
    if options.get("negative"):
        cmd.append("--negative")
    cmd.append(image)
    commands.append(cmd)
    return commands


def read_catalog(workdir: str, image_path: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(workdir) / COMPONENTS
    if not path.exists():
        return []  # aegean exits 0 and writes no table when it finds nothing
    table = Table.read(path)
    if len(table) == 0:
        return []
    info = image_info(fits.getheader(image_path))
    x, y = info.wcs.all_world2pix(table["ra"], table["dec"], 0)
    rows = []
    for i, row in enumerate(table):
        peak, rms = float(row["peak_flux"]), float(row["local_rms"])
        rows.append(normalise_row({
            "id": i + 1,
            "name": source_name(float(row["ra"]), float(row["dec"])),
            "ra": row["ra"], "dec": row["dec"], "x": x[i], "y": y[i],
            # Aegean writes -1 for errors it could not compute.
            "ra_err": _err(row["err_ra"]), "dec_err": _err(row["err_dec"]),
            "peak_flux": peak, "peak_flux_err": _err(row["err_peak_flux"]),
            "int_flux": row["int_flux"], "int_flux_err": _err(row["err_int_flux"]),
            "major": row["a"], "minor": row["b"], "pa": row["pa"],
            "local_rms": rms, "snr": peak / rms if rms > 0 else None,
            "flags": int(row["flags"]),
        }))
    return rows


def maps(workdir: str, options: dict[str, Any]) -> dict[str, Path]:
    """BANE's background and noise maps, when BANE ran (neither forced)."""
    found = {"background.fits": Path(workdir) / f"{BANE_BASE}_bkg.fits",
             "rms.fits": Path(workdir) / f"{BANE_BASE}_rms.fits"}
    return {name: path for name, path in found.items() if path.exists()}


def shm_id(workdir: str) -> str:
    """The id of this job's BANE shared-memory segments: fixed by the work folder."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "caesar-faas:bane:" + os.path.realpath(workdir)))


def cleanup(workdir: str) -> None:
    """Remove what a killed run can leave outside the work folder: BANE's /dev/shm segments.
    Safe to call at any time after the finder processes have ended."""
    for prefix in ("ibkg_", "irms_"):
        try:
            (SHM_DIR / f"{prefix}{shm_id(workdir)}").unlink()
        except FileNotFoundError:
            pass


def _cli(module: str) -> list[str]:
    # -P: do not put the working directory on sys.path (a file there could shadow a module).
    return [sys.executable, "-P", "-c", f"import sys; from {module} import main; sys.exit(main())"]


def _err(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None
