"""PyBDSF adapter: bdsf.process_image in a standalone entry (pybdsf_main.py), one core.

The beam and the frequency are always passed explicitly: PyBDSF reads only RESTFREQ (not the
standard RESTFRQ) when there is no spectral axis, and fails on images without BMAJ.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from astropy.io import fits
from astropy.table import Table

from ...catalog.schema import normalise_row, source_name
from . import UsageError
from .argsfile import entry_argv, write_args
from .fitsinfo import beam_for, frequency_for, image_info

CATALOG = "pybdsf_catalog.fits"
RESULT = "pybdsf_result.json"
# PyBDSF's export_image types -> the map products (pybdsf_main.py writes them when it can).
MAP_EXPORTS = {"background.fits": ("mean", "pybdsf_mean.fits"), "rms.fits": ("rms", "pybdsf_rms.fits"),
               "residual.fits": ("gaus_resid", "pybdsf_resid.fits")}
RMS_MAP = {"auto": None, "map": True, "const": False}
# S_Code -> flags: S single-Gaussian source, M multi-Gaussian, C shares its island with others.
S_CODE_FLAGS = {"S": 0, "M": 1, "C": 2}


def check_image(header: fits.Header, options: dict[str, Any]) -> None:
    image_info(header)
    beam_for(header, options)
    if frequency_for(header, options) is None:
        raise UsageError("PyBDSF needs the observing frequency: the image has no FREQ axis and no "
                         "RESTFRQ/RESTFREQ/FREQ keyword; set the frequency option (Hz).")


def argv(image_path: str, options: dict[str, Any], workdir: str) -> list[list[str]]:
    image = os.path.abspath(image_path)
    header = fits.getheader(image)
    check_image(header, options)
    beam = beam_for(header, options)
    process: dict[str, Any] = {
        "thresh_pix": float(options["thresh_pix"]),
        "thresh_isl": float(options["thresh_isl"]),
        "thresh": options["thresh"],
        "adaptive_rms_box": bool(options["adaptive_rms_box"]),
        "rms_map": RMS_MAP[options["rms_map"]],
        "mean_map": options["mean_map"],
        "atrous_do": bool(options["atrous_do"]),
        "atrous_jmax": int(options["atrous_jmax"]),
        "group_by_isl": bool(options["group_by_isl"]),
        "fix_to_beam": bool(options["fix_to_beam"]),
        "ini_gausfit": options["ini_gausfit"],
        "flag_maxsize_fwhm": float(options["flag_maxsize_fwhm"]),
        "beam": [beam.bmaj, beam.bmin, beam.bpa],
        "frequency": frequency_for(header, options),
        "ncores": 1,  # one process: the job has one CPU, and no fork pool to leave behind
        "quiet": True,
        "outdir": os.path.abspath(workdir),  # the log file goes there, not next to the image
    }
    if options.get("minpix_isl") is not None:
        process["minpix_isl"] = int(options["minpix_isl"])
    if options.get("rms_box_size") is not None:
        process["rms_box"] = [int(options["rms_box_size"]), int(options["rms_box_step"])]
    out = Path(workdir).resolve()
    args = write_args(workdir, "pybdsf", {
        "image": image,
        "process": process,
        "catalog_type": options["catalog_type"],
        "catalog": str(out / CATALOG),
        "result": str(out / RESULT),
        "maps": {img_type: str(out / filename) for img_type, filename in MAP_EXPORTS.values()},
    })
    return [entry_argv("pybdsf_main", args)]


def maps(workdir: str, options: dict[str, Any]) -> dict[str, Path]:
    found = {name: Path(workdir) / filename for name, (_, filename) in MAP_EXPORTS.items()}
    return {name: path for name, path in found.items() if path.exists()}


def read_catalog(workdir: str, image_path: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    result = json.loads((Path(workdir) / RESULT).read_text())
    if result["rows"] == 0:
        return []
    table = Table.read(Path(workdir) / CATALOG)
    info = image_info(fits.getheader(image_path))
    x, y = info.wcs.all_world2pix(table["RA"], table["DEC"], 0)
    rows = []
    for i, row in enumerate(table):
        peak, rms = float(row["Peak_flux"]), float(row["Isl_rms"])
        code = str(row["S_Code"]).strip() if "S_Code" in table.colnames else ""
        rows.append(normalise_row({
            "id": i + 1,
            "name": source_name(float(row["RA"]), float(row["DEC"])),
            "ra": row["RA"], "dec": row["DEC"], "x": x[i], "y": y[i],
            "ra_err": row["E_RA"], "dec_err": row["E_DEC"],
            "peak_flux": peak, "peak_flux_err": row["E_Peak_flux"],
            "int_flux": row["Total_flux"], "int_flux_err": row["E_Total_flux"],
            # PyBDSF catalogues give FWHM sizes in degrees.
            "major": float(row["Maj"]) * 3600.0, "minor": float(row["Min"]) * 3600.0,
            "pa": row["PA"],
            "local_rms": rms, "snr": peak / rms if rms > 0 else None,
            "flags": S_CODE_FLAGS.get(code, 0),
        }))
    return rows
