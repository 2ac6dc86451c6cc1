"""The normalised source catalogue: one schema, with units, whatever finder produced it.

Every finder adapter turns its native output into rows of this schema, so the products
(CSV, VOTable, JSON, DS9 regions) and any comparison between finders read the same columns.
Conventions: positions in degrees (the image's celestial frame, usually FK5/ICRS), pixel
coordinates 0-based (FITS pixel minus 1: the centre of the first pixel is 0,0), fluxes in Jy/beam
(peak) and Jy (integrated), shapes as FWHM in arcsec with the position angle in degrees East of
North. A value the finder does not provide is None.
"""

from __future__ import annotations

import math
from typing import Any

# (name, unit, dtype, description) in catalogue order. Units are astropy unit strings.
COLUMNS: list[tuple[str, str, str, str]] = [
    ("id", "", "int", "Running number of the source in this catalogue, from 1"),
    ("name", "", "str", "Source name from its position, JHHMMSS.ss+DDMMSS.s"),
    ("ra", "deg", "float", "Right ascension of the source centre"),
    ("dec", "deg", "float", "Declination of the source centre"),
    ("x", "pix", "float", "Column of the source centre, 0-based (FITS x - 1)"),
    ("y", "pix", "float", "Row of the source centre, 0-based (FITS y - 1)"),
    ("ra_err", "deg", "float", "1-sigma error on ra (along the RA axis, not multiplied by cos dec)"),
    ("dec_err", "deg", "float", "1-sigma error on dec"),
    ("peak_flux", "Jy/beam", "float", "Peak surface brightness"),
    ("peak_flux_err", "Jy/beam", "float", "1-sigma error on peak_flux"),
    ("int_flux", "Jy", "float", "Integrated flux density"),
    ("int_flux_err", "Jy", "float", "1-sigma error on int_flux"),
    ("major", "arcsec", "float", "Major axis FWHM (not deconvolved from the beam)"),
    ("minor", "arcsec", "float", "Minor axis FWHM (not deconvolved from the beam)"),
    ("pa", "deg", "float", "Position angle of the major axis, East of North"),
    ("local_rms", "Jy/beam", "float", "Local noise at the source position"),
    ("snr", "", "float", "peak_flux / local_rms"),
    ("flags", "", "int", "Finder-specific quality bits, 0 = no warning (see the app description)"),
]

# UCD1+ (IVOA UCD list) per column, what VO tools (TOPCAT, Aladin) use to know what a column
# means without reading its name. ra/dec take the image frame's words (catalog/frames.py:
# pos.galactic.lon/lat for a galactic image); these are the equatorial ones.
UCDS: dict[str, str] = {
    "id": "meta.record",
    "name": "meta.id;meta.main",
    "ra": "pos.eq.ra;meta.main",
    "dec": "pos.eq.dec;meta.main",
    "x": "pos.cartesian.x;instr.det",
    "y": "pos.cartesian.y;instr.det",
    "ra_err": "stat.error;pos.eq.ra",
    "dec_err": "stat.error;pos.eq.dec",
    "peak_flux": "phot.flux.density;stat.max",
    "peak_flux_err": "stat.error;phot.flux.density;stat.max",
    "int_flux": "phot.flux.density",
    "int_flux_err": "stat.error;phot.flux.density",
    "major": "phys.angSize.smajAxis;src",
    "minor": "phys.angSize.sminAxis;src",
    "pa": "pos.posAng;src",
    "local_rms": "stat.stdev;phot.flux.density",
    "snr": "stat.snr",
    "flags": "meta.code.qual",
}

NAMES: list[str] = [c[0] for c in COLUMNS]
UNITS: dict[str, str] = {c[0]: c[1] for c in COLUMNS}
DTYPES: dict[str, str] = {c[0]: c[2] for c in COLUMNS}
DESCRIPTIONS: dict[str, str] = {c[0]: c[3] for c in COLUMNS}


def normalise_row(d: dict[str, Any]) -> dict[str, Any]:
    """Return the row with every column in COLUMNS order, missing values None, numpy scalars
    turned into Python int/float/str and NaN or infinities turned into None.

    Unknown keys raise KeyError: they are adapter bugs, not data to drop silently."""
    unknown = set(d) - set(NAMES)
    if unknown:
        raise KeyError(f"unknown catalogue columns: {sorted(unknown)}")
    return {name: _coerce(d.get(name), DTYPES[name], name) for name in NAMES}


def source_name(ra: float, dec: float) -> str:
    """IAU-style name JHHMMSS.ss+DDMMSS.s (truncated, not rounded, as the IAU asks)."""
    ra = ra % 360.0
    total = ra / 15.0 * 3600.0  # seconds of time
    hh = int(total // 3600)
    mm = int((total - hh * 3600) // 60)
    ss = math.floor((total - hh * 3600 - mm * 60) * 100) / 100
    sign = "+" if dec >= 0 else "-"
    arcsec = abs(dec) * 3600.0
    dd = int(arcsec // 3600)
    dm = int((arcsec - dd * 3600) // 60)
    ds = math.floor((arcsec - dd * 3600 - dm * 60) * 10) / 10
    return f"J{hh:02d}{mm:02d}{ss:05.2f}{sign}{dd:02d}{dm:02d}{ds:04.1f}"


def _coerce(value: Any, dtype: str, name: str) -> Any:
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar -> Python scalar
    if dtype == "str":
        return value.decode() if isinstance(value, bytes) else str(value)
    if isinstance(value, bool):
        raise TypeError(f"column {name}: booleans are not numbers")
    if dtype == "int":
        if isinstance(value, float):
            if not math.isfinite(value):
                return None
            if value != int(value):
                raise TypeError(f"column {name}: {value!r} is not an integer")
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None
