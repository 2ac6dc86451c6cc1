"""FITS products for the maps a finder computes (background, noise, residual), each a 2-D
float32 image on the input's pixel grid with the input's celestial WCS, unit and beam, so
DS9, Aladin or astropy overlay them on the image exactly.

The finders write their maps with headers of their own making (BANE copies the input's,
PyBDSF writes its own); the header here is always rebuilt from the input image, so every map
product carries the same WCS whatever finder made it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

log = logging.getLogger(__name__)

# product name -> (what the map is, BTYPE as CASA writes it)
MAPS = {
    "background.fits": ("background level estimated by the finder", "Background"),
    "rms.fits": ("local noise (rms) estimated by the finder", "Noise"),
    "residual.fits": ("the image minus the fitted sources", "Residual"),
}
_COPIED = ("BUNIT", "BMAJ", "BMIN", "BPA", "OBJECT", "TELESCOP", "DATE-OBS", "RESTFRQ", "RESTFREQ")


def map_header(image_header: fits.Header, name: str, finder: str) -> fits.Header:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        header = WCS(image_header).celestial.to_header()
    for key in _COPIED:
        if key in image_header:
            header[key] = image_header[key]
    what, btype = MAPS[name]
    header["BTYPE"] = (btype, "what the pixel values are")
    header["ORIGIN"] = ("caesar-faas", f"{what} ({finder})")
    return header


def write_map(source: Path, image_header: fits.Header, image_shape: tuple[int, int], dest: Path, *,
              finder: str) -> Path | None:
    """dest from the first plane of the finder's map in source; None (logged) when the map is
    not on the image's pixel grid, which would make its WCS a lie."""
    if dest.name not in MAPS:
        raise ValueError(f"not a map product name: {dest.name}")
    with fits.open(source, memmap=True) as hdul:
        hdu = next((h for h in hdul if h.data is not None and h.data.ndim >= 2), None)
        if hdu is None:
            log.warning("%s holds no image; %s not written", source.name, dest.name)
            return None
        data = hdu.data
        plane = data[(0,) * (data.ndim - 2)]
        if plane.shape != image_shape:
            log.warning("%s is %s pixels, the image %s; %s not written", source.name, plane.shape, image_shape,
                        dest.name)
            return None
        out = np.asarray(plane, dtype=np.float32)
    fits.PrimaryHDU(data=out, header=map_header(image_header, dest.name, finder)).writeto(dest, overwrite=True)
    return dest
