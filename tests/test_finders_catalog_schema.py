"""The normalised catalogue schema shared by every finder."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u

from caesar_faas.catalog.schema import COLUMNS, NAMES, UNITS, normalise_row, source_name


def test_columns_order_and_units():
    assert NAMES == ["id", "name", "ra", "dec", "x", "y", "ra_err", "dec_err", "peak_flux",
                     "peak_flux_err", "int_flux", "int_flux_err", "major", "minor", "pa",
                     "local_rms", "snr", "flags"]
    assert UNITS["ra"] == "deg" and UNITS["x"] == "pix" and UNITS["peak_flux"] == "Jy/beam"
    assert UNITS["int_flux"] == "Jy" and UNITS["major"] == "arcsec" and UNITS["pa"] == "deg"
    for _name, unit, dtype, description in COLUMNS:
        assert dtype in ("int", "float", "str") and description
        if unit:
            u.Unit(unit)  # every unit parses in astropy (VOTable writers rely on it)


def test_normalise_fills_orders_and_converts():
    row = normalise_row({"snr": np.float32(12.5), "id": np.int64(3), "ra": np.float64(10.0),
                         "flags": np.int16(4), "name": b"J1", "x": math.nan, "y": np.inf})
    assert list(row) == NAMES
    assert row["id"] == 3 and type(row["id"]) is int
    assert row["snr"] == 12.5 and type(row["snr"]) is float
    assert row["flags"] == 4 and type(row["flags"]) is int
    assert row["name"] == "J1"
    assert row["x"] is None and row["y"] is None  # NaN and inf are "missing"
    assert row["dec"] is None and row["major"] is None


def test_normalise_refuses_unknown_columns_and_bad_types():
    with pytest.raises(KeyError, match="bogus"):
        normalise_row({"bogus": 1})
    with pytest.raises(TypeError):
        normalise_row({"id": 1.5})
    with pytest.raises(TypeError):
        normalise_row({"ra": True})


def test_source_name():
    assert source_name(150.0, -30.0) == "J100000.00-300000.0"
    assert source_name(0.0, 0.0) == "J000000.00+000000.0"
    # 10h00m24.0234s, -30d07m57.73s: truncated, not rounded.
    assert source_name(150.1000975, -30.1327028) == "J100024.02-300757.7"
    assert source_name(359.99999, 89.5).startswith("J235959.99+8930")
