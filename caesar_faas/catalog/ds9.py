"""sources.reg: a DS9 region file in the image's own frame (icrs, fk5, fk4 or galactic, from its
RADESYS/EQUINOX and axis types: catalog/frames.py), one ellipse per source with a fitted shape,
else a circle.

DS9 takes ellipse radii (half the FWHM axes the schema holds) and an angle counter-clockwise from
the RA axis, while the schema's pa is the astronomers' position angle, North through East: so the
DS9 angle is pa + 90 (what Aegean's own region writer does)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .values import finite

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.:+-]")


def region_line(row: dict[str, Any], circle_radius_arcsec: float) -> str | None:
    """One DS9 shape for a source, or None when it has no sky position."""
    ra, dec = finite(row.get("ra")), finite(row.get("dec"))
    if ra is None or dec is None:
        return None
    major, minor, pa = finite(row.get("major")), finite(row.get("minor")), finite(row.get("pa"))
    if major and minor and major > 0 and minor > 0:
        shape = f'ellipse({ra:.7f},{dec:.7f},{major / 2:.4f}",{minor / 2:.4f}",{((pa or 0.0) + 90.0) % 360.0:.3f})'
    else:
        shape = f'circle({ra:.7f},{dec:.7f},{circle_radius_arcsec:.4f}")'
    label = _LABEL_UNSAFE.sub("_", str(row.get("id", "") or ""))
    return f"{shape} # text={{{label}}}" if label else shape


DS9_FRAMES = ("icrs", "fk5", "fk4", "galactic", "ecliptic")


def write_ds9(rows: Sequence[dict[str, Any]], path: Path, *, circle_radius_arcsec: float = 5.0,
              title: str = "caesar-faas sources", frame: str = "icrs") -> Path:
    if frame not in DS9_FRAMES:
        raise ValueError(f"not a DS9 sky frame: {frame!r}")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("# Region file format: DS9 version 4.1\n")
        fh.write(f"# {_LABEL_UNSAFE.sub(' ', title)}\n")
        fh.write('global color=green dashlist=8 3 width=1 font="helvetica 10 normal roman" '
                 "select=1 highlite=1 dash=0 fixed=0 edit=1 move=1 delete=1 include=1 source=1\n")
        fh.write(frame + "\n")
        for row in rows:
            line = region_line(row, circle_radius_arcsec)
            if line is not None:
                fh.write(line + "\n")
    return path
