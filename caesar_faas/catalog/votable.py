"""catalog.vot: the catalogue as a VOTable that VO tools read natively: units, descriptions and
UCD1+ per column from the schema, a COOSYS matching the image's frame (RADESYS/EQUINOX) that
the position columns refer to, the image's frequency and beam as PARAMs, and the job's
provenance as INFO elements (and its options as typed PARAMs) so the file alone says how it was
made. It passes astropy's VOTable validator with no warning (tests/test_vo_products.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io.votable import from_table, writeto
from astropy.io.votable.tree import CooSys, Info, Param
from astropy.table import MaskedColumn, Table

from .frames import ICRS, SkyFrame
from .schema import UCDS

COOSYS_ID = "image_frame"


@dataclass(frozen=True)
class ImageParam:
    """A fact about the input image written as a PARAM (frequency, beam)."""

    name: str
    value: float
    unit: str
    ucd: str
    description: str

_DTYPES = {"int": "int64", "integer": "int64", "long": "int64", "float": "float64", "double": "float64",
           "str": "str", "string": "str", "bool": "bool", "boolean": "bool"}


def _numpy_dtype(dtype: str) -> np.dtype:
    name = _DTYPES.get(str(dtype).lower(), str(dtype))
    return np.dtype(name)


def _column(name: str, unit: str, dtype: str, description: str, values: list[Any]) -> MaskedColumn:
    kind = _numpy_dtype(dtype)
    mask = [v is None for v in values]
    if kind.kind in "US":
        data = np.array(["" if v is None else str(v) for v in values], dtype=str)
    elif kind.kind == "b":
        data = np.array([bool(v) if v is not None else False for v in values], dtype=bool)
    else:
        fill = 0 if kind.kind in "iu" else np.nan
        data = np.array([fill if v is None else v for v in values], dtype=kind)
    return MaskedColumn(data, name=name, mask=mask, unit=unit or None, description=description)


def _param(votable: Any, name: str, value: Any) -> Param | None:
    """A typed PARAM for a job option (None means "not set": no PARAM)."""
    common = {"name": name, "ID": f"option_{name}", "ucd": "meta.code"}
    if value is None:
        return None
    if isinstance(value, bool):
        return Param(votable, datatype="boolean", value=value, **common)
    if isinstance(value, int):
        return Param(votable, datatype="long", value=value, **common)
    if isinstance(value, float):
        return Param(votable, datatype="double", value=value, **common)
    text = value if isinstance(value, str) else json.dumps(value)
    return Param(votable, datatype="char", arraysize="*", value=text, **common)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _ucd(name: str, frame: SkyFrame) -> str | None:
    if name == "ra":
        return f"{frame.lon_ucd};meta.main"
    if name == "dec":
        return f"{frame.lat_ucd};meta.main"
    if name in ("ra_err", "dec_err"):
        return f"stat.error;{frame.lon_ucd if name == 'ra_err' else frame.lat_ucd}"
    return UCDS.get(name)


def write_votable(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str, str]],
                  provenance: dict[str, Any], path: Path, *, frame: SkyFrame = ICRS,
                  image_params: Sequence[ImageParam] = ()) -> Path:
    """rows ordered and cleaned (values.ordered_rows); columns the schema's tuples; frame the
    image's celestial frame (catalog/frames.py); image_params its frequency and beam."""
    table = Table([_column(name, unit, dtype, description, [row[name] for row in rows])
                   for name, unit, dtype, description in columns])
    votable = from_table(table)
    resource = votable.resources[0]
    vo_table = resource.tables[0]
    vo_table.name = "sources"
    vo_table.description = f"Sources found by {provenance.get('app', 'a source finder')} (caesar-faas)"
    resource.coordinate_systems.append(CooSys(ID=COOSYS_ID, system=frame.system, equinox=frame.equinox))
    for field in vo_table.fields:
        if field.datatype in ("char", "unicodeChar"):
            field.arraysize = "*"  # variable-length text, not the longest value seen
        field.ucd = _ucd(field.name, frame)
        if field.name in ("ra", "dec"):
            field.ref = COOSYS_ID
    for item in image_params:
        vo_table.params.append(Param(votable, name=item.name, ID=item.name, datatype="double", value=item.value,
                                     unit=item.unit, ucd=item.ucd))
        vo_table.params[-1].description = item.description
    for key, value in provenance.items():
        if key == "options":
            continue
        if isinstance(value, dict):  # e.g. software versions: one INFO per package
            for sub, subvalue in sorted(value.items()):
                resource.infos.append(Info(name=f"{key}.{sub}", value=_text(subvalue)))
        else:
            resource.infos.append(Info(name=key, value=_text(value)))
    options = provenance.get("options") or {}
    resource.infos.append(Info(name="options", value=json.dumps(options, sort_keys=True)))
    for name, value in sorted(options.items()):
        param = _param(votable, name, value)
        if param is not None:
            vo_table.params.append(param)
    writeto(votable, str(path))
    return path
