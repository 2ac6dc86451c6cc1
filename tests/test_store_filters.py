"""The condition language: the Python reference, its MongoDB translation, its validation, and
the pagination cursor format."""

from __future__ import annotations

import pytest

from caesar_faas.store import cursors
from caesar_faas.store.filters import matches, to_mongo, validate


@pytest.mark.parametrize(("record", "where", "ok"), [
    ({}, {"a": None}, True),
    ({"a": None}, {"a": None}, True),
    ({"a": 0}, {"a": None}, False),
    ({"a": True}, {"a": 1}, False),  # booleans only equal booleans (as in MongoDB)
    ({"a": 1}, {"a": True}, False),
    ({"a": 1}, {"a": {"in": [True]}}, False),
    ({"a": 1}, {"a": {"nin": [True]}}, True),
    ({"a": 1}, {"a": 1.0}, True),
    ({"a": "1"}, {"a": 1}, False),
    ({"a": ["x"]}, {"a": "x"}, False),  # no array-element matching
    ({"a": True}, {"a": {"lt": 5}}, False),
    ({"a": "3"}, {"a": {"lt": 5}}, False),
    ({}, {"a": {"gte": 0}}, False),
    ({}, {"a": {"nin": ["x"]}}, True),
    ({}, {"a": {"in": [None]}}, True),
    ({"a": {"b": {"c": 2}}}, {"a.b.c": {"gt": 1}}, True),
    ({"a": {"b": 2}}, {"a.b.c": None}, True),
    ({"a": 5}, {"a": {"gt": 1, "lt": 5}}, False),
])
def test_reference_semantics(record: dict, where: dict, ok: bool) -> None:
    assert matches(record, where) is ok


def test_mongo_translation() -> None:
    where = {"id": "j1", "state": {"in": ("PENDING", "STARTED")}, "tag": None,
             "progress": {"gte": 10, "lt": 90}, "app": {"nin": ["sep"]}, "meta.k": 1}
    assert to_mongo(where) == {
        "_id": "j1", "state": {"$in": ["PENDING", "STARTED"]}, "tag": None,
        "progress": {"$gte": 10, "$lt": 90}, "app": {"$nin": ["sep"]}, "meta.k": 1,
    }
    assert to_mongo(None) == {}
    assert to_mongo({"id": "x"}, id_field="id") == {"id": "x"}


@pytest.mark.parametrize("where", [
    [("a", 1)], {"": 1}, {"$where": "1"}, {"a..b": 1}, {"a": {}}, {"a": {"$in": [1]}},
    {"a": {"in": "abc"}}, {"a": {"in": [[1]]}}, {"a": {"lt": "5"}}, {"a": {"gt": True}},
    {"a": [1]}, {"a": object()}, {1: 1},
])
def test_invalid_filters_raise(where) -> None:
    with pytest.raises(ValueError):
        validate(where)
    with pytest.raises(ValueError):
        to_mongo(where)


def test_cursor_roundtrip_and_rejection() -> None:
    cursor = cursors.encode(1716000000.123456, "job-1")
    assert cursors.decode(cursor) == (1716000000.123456, "job-1")
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # URL-safe as it is
    for bad in (cursor[:-2], cursor + "x", "a" * 7, "\u00e9", cursors.encode(1.0, "j")[::-1]):
        with pytest.raises(ValueError):
            cursors.decode(bad)
