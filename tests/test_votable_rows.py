"""The VOTable's rows are written by catalog/votable.py itself (astropy writes the document
around them): what a reader parses back is what astropy's own writer gives for the same rows,
nulls, text that needs escaping and floats to the last bit included."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from astropy.io.votable import from_table, parse, writeto
from astropy.table import Table

from caesar_faas.catalog.schema import COLUMNS
from caesar_faas.catalog.votable import DATE_SLOT, _column, votable_envelope, write_votable

PROVENANCE = {"app": "sep", "job_id": "j", "options": {"thresh": 5.0}, "input_filename": "x.fits"}


def _rows() -> list[dict]:
    values = {"int": [1, None, 2**40, -3], "float": [1.5e-7, None, math.pi, -0.0],
              "str": ["J1234+5678", None, 'a & b <c> "d" \'e\' é ✓', ""]}
    return [{name: values[dtype][i] for name, _, dtype, _ in COLUMNS} for i in range(4)]


def _parsed(path: Path) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file must read back with no warning at all
        return parse(str(path)).get_first_table().to_table()


def test_rows_read_back_as_astropys_writer_writes_them(tmp_path: Path) -> None:
    rows = _rows()
    ours = _parsed(write_votable(rows, COLUMNS, PROVENANCE, tmp_path / "ours.vot"))
    reference = tmp_path / "astropy.vot"
    writeto(from_table(Table([_column(n, u, d, desc, [r[n] for r in rows]) for n, u, d, desc in COLUMNS])),
            str(reference))
    theirs = _parsed(reference)
    assert ours.colnames == theirs.colnames == [c[0] for c in COLUMNS]
    assert len(ours) == len(theirs) == 4
    for name, _, dtype, _ in COLUMNS:
        mine, ref = ours[name], theirs[name]
        assert list(np.ma.getmaskarray(mine)) == list(np.ma.getmaskarray(ref)), name
        if dtype != "str":  # (VOTable text has no null: an empty cell reads back as "", as astropy's)
            assert list(np.ma.getmaskarray(mine)) == [r[name] is None for r in rows], name
        for i, row in enumerate(rows):
            if row[name] is None:
                assert dtype != "str" or mine[i] == ref[i] == "", (name, i)
                continue
            assert mine[i] == ref[i] == row[name], (name, i)
            if dtype == "float":
                assert math.copysign(1, mine[i]) == math.copysign(1, row[name])  # -0.0 stays -0.0


def test_no_rows_is_an_empty_table(tmp_path: Path) -> None:
    table = _parsed(write_votable([], COLUMNS, PROVENANCE, tmp_path / "empty.vot"))
    assert len(table) == 0 and table.colnames == [c[0] for c in COLUMNS]


def test_control_characters_cannot_break_the_xml(tmp_path: Path) -> None:
    rows = _rows()[:1]
    rows[0]["name"] = "bad\x00\x07name"
    table = _parsed(write_votable(rows, COLUMNS, PROVENANCE, tmp_path / "ctl.vot"))
    assert table["name"][0] == "bad\ufffd\ufffdname"


def test_an_envelope_made_beforehand_gives_the_same_document(tmp_path: Path) -> None:
    """The runner makes the document around the rows while the finder runs (votable_envelope);
    with the provenance's date filled in later, the file is the one made all at once. An
    envelope for another provenance is not used."""
    dated = {**PROVENANCE, "date": "2026-12-01T17:20:00Z"}
    envelope = votable_envelope(COLUMNS, PROVENANCE)
    at_once = write_votable(_rows(), COLUMNS, dated, tmp_path / "at_once.vot").read_text()
    later = write_votable(_rows(), COLUMNS, dated, tmp_path / "later.vot", envelope=envelope).read_text()
    assert later == at_once and DATE_SLOT not in later
    infos = {info.name: info.value for info in parse(str(tmp_path / "later.vot")).resources[0].infos}
    assert infos["date"] == "2026-12-01T17:20:00Z" and infos["app"] == "sep"
    other = votable_envelope(COLUMNS, {**PROVENANCE, "app": "aegean"})
    mismatched = write_votable(_rows(), COLUMNS, dated, tmp_path / "other.vot", envelope=other).read_text()
    assert mismatched == at_once
