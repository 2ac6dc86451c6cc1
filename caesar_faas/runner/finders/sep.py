"""SEP adapter: background, extraction and measurements in a standalone entry (sep_main.py).

SEP works in pixels and counts; this adapter gives it the beam in pixels (window size, optional
matched filter) and turns its output into sky units: positions through the WCS, Jy/beam sums
into Jy through the beam area, second-moment sigmas into FWHM arcsec, angles into sky PAs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ...catalog.schema import normalise_row, source_name
from .argsfile import entry_argv, write_args
from .fitsinfo import (
    FWHM_TO_SIGMA,
    beam_area_pixels,
    beam_for,
    beam_kernel,
    beam_pixels,
    image_info,
    sky_position_angle,
)

OUTPUT = "sep_objects.fits"
MIN_RADIUS = 1.75  # pixels: circular aperture for objects too small for a Kron ellipse


def check_image(header: fits.Header, options: dict[str, Any]) -> None:
    image_info(header)
    beam_for(header, options)


def argv(image_path: str, options: dict[str, Any], workdir: str) -> list[list[str]]:
    image = os.path.abspath(image_path)
    header = fits.getheader(image)
    info = image_info(header)
    beam = beam_for(header, options)
    bmaj_pix, bmin_pix = beam_pixels(info, beam)
    kernel = None
    if options["filter_kernel"] == "beam":
        kernel = np.round(beam_kernel(info, beam), 6).tolist()
    params = {
        "thresh": float(options["thresh"]),
        "minarea": int(options["minarea"]),
        "bkg_box": int(options["bkg_box"]),
        "bkg_filter": int(options["bkg_filter"]),
        "bkg_fthresh": float(options["bkg_fthresh"]),
        "deblend_nthresh": int(options["deblend_nthresh"]),
        "deblend_cont": float(options["deblend_cont"]),
        "clean": bool(options["clean"]),
        "clean_param": float(options["clean_param"]),
        "kernel": kernel,
        "filter_type": options["filter_type"],
        "kron_factor": float(options["kron_factor"]),
        "min_radius": MIN_RADIUS,
        "win_sigma": math.sqrt(bmaj_pix * bmin_pix) * FWHM_TO_SIGMA,
    }
    args = write_args(workdir, "sep", {
        "image": image,
        "output": str(Path(workdir).resolve() / OUTPUT),
        "params": params,
    })
    return [entry_argv("sep_main", args)]


def read_catalog(workdir: str, image_path: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    table = Table.read(Path(workdir) / OUTPUT)
    if len(table) == 0:
        return []
    header = fits.getheader(image_path)
    info = image_info(header)
    beam = beam_for(header, options)
    area = beam_area_pixels(info, beam)
    x, y = np.asarray(table["x"]), np.asarray(table["y"])
    ra, dec = info.wcs.all_pix2world(x, y, 0)
    pa = sky_position_angle(info.wcs, x, y, np.asarray(table["theta"]))
    sx, sy = info.pixel_scale
    scale_arcsec = info.pixel_scale_arcsec
    rows = []
    for i, row in enumerate(table):
        peak, rms = float(row["peak"]), float(row["local_rms"])
        rows.append(normalise_row({
            "id": i + 1,
            "name": source_name(float(ra[i]), float(dec[i])),
            "ra": ra[i], "dec": dec[i], "x": x[i], "y": y[i],
            "ra_err": math.sqrt(max(float(row["errx2"]), 0.0)) * sx,
            "dec_err": math.sqrt(max(float(row["erry2"]), 0.0)) * sy,
            "peak_flux": peak, "peak_flux_err": rms,
            # A sum of Jy/beam pixels over the beam area in pixels is a flux density in Jy.
            "int_flux": float(row["flux_auto"]) / area,
            "int_flux_err": float(row["flux_auto_err"]) / area,
            "major": float(row["a"]) / FWHM_TO_SIGMA * scale_arcsec,
            "minor": float(row["b"]) / FWHM_TO_SIGMA * scale_arcsec,
            "pa": pa[i],
            "local_rms": rms, "snr": peak / rms if rms > 0 else None,
            "flags": int(row["flag"]),
        }))
    return rows
