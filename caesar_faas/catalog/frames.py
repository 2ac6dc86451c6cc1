"""The celestial frame of an image, as each product names it: the VOTable COOSYS system and
equinox, the DS9 region frame, and the UCDs of the position columns.

Read through astropy's WCS, which applies the FITS defaults (WCS Paper II §3.1): RADESYS
absent -> FK4 when EQUINOX < 1984, FK5 when EQUINOX is given otherwise, ICRS when neither is.
A galactic image (GLON/GLAT axes) has galactic positions in the catalogue's ra/dec columns: the
frame says so, so no tool mistakes them for equatorial ones.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning


@dataclass(frozen=True)
class SkyFrame:
    system: str  # VOTable COOSYS system: ICRS | FK5 | FK4 | galactic | ecl_FK5
    equinox: str | None  # COOSYS equinox (J2000.0, B1950.0) for FK4/FK5, else None
    ds9: str  # DS9 region frame: icrs | fk5 | fk4 | galactic | ecliptic
    lon_ucd: str
    lat_ucd: str


ICRS = SkyFrame("ICRS", None, "icrs", "pos.eq.ra", "pos.eq.dec")


def sky_frame(header: fits.Header | None) -> SkyFrame:
    """The frame of the image's celestial axes (ICRS when the header says nothing usable)."""
    if header is None:
        return ICRS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            celestial = WCS(header).celestial
        ctype = str(celestial.wcs.ctype[0]).upper()
        radesys = str(celestial.wcs.radesys or "").strip().upper()
        equinox = float(celestial.wcs.equinox)
    except Exception:  # noqa: BLE001 - a header astropy cannot read has no frame to report
        return ICRS
    if ctype.startswith("GLON"):
        return SkyFrame("galactic", None, "galactic", "pos.galactic.lon", "pos.galactic.lat")
    if ctype.startswith("ELON"):
        return SkyFrame("ecl_FK5", "J2000.0", "ecliptic", "pos.ecliptic.lon", "pos.ecliptic.lat")
    if radesys == "FK5":
        return SkyFrame("FK5", f"J{_year(equinox, 2000.0)}", "fk5", "pos.eq.ra", "pos.eq.dec")
    if radesys == "FK4":
        return SkyFrame("FK4", f"B{_year(equinox, 1950.0)}", "fk4", "pos.eq.ra", "pos.eq.dec")
    return ICRS


def _year(value: float, default: float) -> str:
    return f"{value if math.isfinite(value) else default:.1f}"
