"""The condition language of store.base, evaluated in Python and translated to MongoDB.

`matches` is the reference semantics: the SQLite store uses it to re-check every row it reads
(SQL only narrows), and the tests compare every backend with it. Fields name top-level keys or
dotted paths into nested dicts. Conditions are meant for scalar fields: equality against a list
is rejected here, and a stored list never equals a scalar (MongoDB would match its elements, so
do not filter on list-valued fields).
"""

from __future__ import annotations

from numbers import Real
from typing import Any

from .base import Filter, Record

COMPARISONS = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}
MEMBERSHIP = {"in": "$in", "nin": "$nin"}
OPERATORS = {**COMPARISONS, **MEMBERSHIP}
MISSING = object()  # what lookup() returns for an absent field
_SCALARS = (str, int, float, bool, type(None))


def is_number(value: Any) -> bool:
    """int or float but not bool (MongoDB never compares booleans with numbers)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def validate(where: Filter | None) -> None:
    """Raise ValueError for anything outside the condition language, before touching a database."""
    if where is None:
        return
    if not isinstance(where, dict):
        raise ValueError(f"filter must be a dict, not {type(where).__name__}")
    for field, cond in where.items():
        check_field(field)
        if isinstance(cond, dict):
            if not cond:
                raise ValueError(f"empty condition for {field!r}")
            for op, arg in cond.items():
                if op not in OPERATORS:
                    raise ValueError(f"unknown operator {op!r} for {field!r}")
                if op in MEMBERSHIP:
                    if not isinstance(arg, list | tuple | set | frozenset):
                        raise ValueError(f"{op!r} for {field!r} needs a list")
                    if not all(isinstance(v, _SCALARS) for v in arg):
                        raise ValueError(f"{op!r} for {field!r} accepts scalars only")
                elif not is_number(arg):
                    raise ValueError(f"{op!r} for {field!r} needs a number, not {arg!r}")
        elif not isinstance(cond, _SCALARS):
            raise ValueError(f"equality on {field!r} accepts scalars only (use 'in' for lists)")


def check_field(field: Any) -> None:
    """Field names must be plain: no operators, no empty path segments."""
    if not isinstance(field, str) or not field or field.startswith("$") or "" in field.split("."):
        raise ValueError(f"bad field name {field!r}")


def lookup(record: Record, field: str, default: Any = MISSING) -> Any:
    """The value at `field` (dotted path), or `default`."""
    value: Any = record
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def equal(stored: Any, wanted: Any) -> bool:
    """MongoDB equality on scalars: None matches missing or null, bools only equal bools."""
    if wanted is None:
        return stored is None or stored is MISSING
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    if is_number(stored) and is_number(wanted):
        return stored == wanted
    return type(stored) is type(wanted) and stored == wanted


def _compare(op: str, stored: Any, arg: float) -> bool:
    if not is_number(stored):
        return False  # missing, null, strings, bools never match a numeric comparison
    if op == "lt":
        return stored < arg
    if op == "lte":
        return stored <= arg
    if op == "gt":
        return stored > arg
    return stored >= arg


def _condition_holds(stored: Any, cond: Any) -> bool:
    if not isinstance(cond, dict):
        return equal(stored, cond)
    for op, arg in cond.items():
        if op == "in":
            ok = any(equal(stored, v) for v in arg)
        elif op == "nin":
            ok = not any(equal(stored, v) for v in arg)
        else:
            ok = _compare(op, stored, arg)
        if not ok:
            return False
    return True


def matches(record: Record, where: Filter | None) -> bool:
    """True when every condition in `where` holds for `record` (the reference semantics)."""
    validate(where)
    return all(_condition_holds(lookup(record, f), c) for f, c in (where or {}).items())


def to_mongo(where: Filter | None, *, id_field: str = "_id") -> dict[str, Any]:
    """The MongoDB query equivalent to `where`; field `id` becomes `id_field`."""
    validate(where)
    query: dict[str, Any] = {}
    for field, cond in (where or {}).items():
        name = id_field if field == "id" else field
        if isinstance(cond, dict):
            query[name] = {OPERATORS[op]: list(arg) if op in MEMBERSHIP else arg
                           for op, arg in cond.items()}
        else:
            query[name] = cond  # {field: None} already matches missing or null in MongoDB
    return query
