"""Strict job option validation: every rule, per type, and the 400 it becomes."""

from __future__ import annotations

import math

import pytest

from caesar_faas.apps import OptionError, get_app, validate_options
from caesar_faas.apps.spec import AppSpec, OptionSpec
from caesar_faas.errors import BadRequest


def _spec(**extra_options: OptionSpec) -> AppSpec:
    options = {
        "n": OptionSpec("n", "int", "an int", default=3, min=1, max=10),
        "x": OptionSpec("x", "float", "a float", default=0.5, min=0.0, max=1.0),
        "s": OptionSpec("s", "str", "a string", default="a"),
        "e": OptionSpec("e", "str", "an enum", default="hard", enum=["hard", "fdr"]),
        "b": OptionSpec("b", "bool", "a bool", default=False),
        "f": OptionSpec("f", "none", "a flag", default=False),
        "k": OptionSpec("k", "int", "discrete", default=2, allowed_values=[2, 4, 8]),
        "opt": OptionSpec("opt", "float", "optional, unset by default"),
        "lo": OptionSpec("lo", "float", "low", default=1.0),
        "hi": OptionSpec("hi", "float", "high", default=2.0),
        "p": OptionSpec("p", "int", "pair 1"),
        "q": OptionSpec("q", "int", "pair 2"),
        **extra_options,
    }
    return AppSpec(name="t", description="test app", version="1", options=options,
                   input_option="image", default_timeout=60, local_entry=None, image="i",
                   command=["x"], constraints=[
                       {"rule": "le", "options": ["lo", "hi"]},
                       {"rule": "together", "options": ["p", "q"]},
                       {"rule": "requires", "options": ["opt", "p"]},
                   ])


def _fails(spec: AppSpec, job_inputs: object, option: str, *words: str) -> OptionError:
    with pytest.raises(OptionError) as info:
        validate_options(spec, job_inputs)
    err = info.value
    assert err.option == option
    for word in words:
        assert word in err.message, err.message
    return err


def test_empty_inputs_give_every_default_in_spec_order():
    spec = _spec()
    out = validate_options(spec, {})
    assert list(out) == list(spec.options)
    assert out == {"n": 3, "x": 0.5, "s": "a", "e": "hard", "b": False, "f": False, "k": 2,
                   "opt": None, "lo": 1.0, "hi": 2.0, "p": None, "q": None}
    assert validate_options(spec, None) == out


def test_given_values_are_returned():
    out = validate_options(_spec(), {"n": 10, "x": 1, "s": "zz", "e": "fdr", "b": True, "f": True,
                                     "k": 8, "p": 1, "q": 2, "opt": 0.25})
    assert out["n"] == 10 and out["e"] == "fdr" and out["b"] is True and out["f"] is True
    assert out["x"] == 1.0 and isinstance(out["x"], float)  # an int is accepted for a float
    assert out["opt"] == 0.25 and out["p"] == 1


def test_error_is_a_400_with_the_option_named():
    err = _fails(_spec(), {"n": "3"}, "n")
    assert isinstance(err, BadRequest)
    assert err.http_status == 400
    body = err.body()
    assert body["error"] == "invalid_option" and body["option"] == "n" and "'n'" in body["status"]


def test_unknown_option():
    _fails(_spec(), {"nope": 1}, "nope", "not an option")
    _fails(_spec(), {"n": 3, "zzz": True}, "zzz")


def test_input_option_is_refused():
    _fails(_spec(), {"image": "x.fits"}, "image", "data_inputs")


def test_job_inputs_must_be_an_object():
    _fails(_spec(), ["n", 3], "job_inputs", "object")
    _fails(_spec(), "n=3", "job_inputs")


@pytest.mark.parametrize("value", ["3", 3.0, 3.5, True, False, [3], {"v": 3}])
def test_int_refuses_everything_but_int(value):
    _fails(_spec(), {"n": value}, "n", "integer")


@pytest.mark.parametrize("value", ["0.5", True, [0.5], {"v": 1}])
def test_float_refuses_non_numbers(value):
    _fails(_spec(), {"x": value}, "x", "number")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_float_refuses_non_finite(value):
    _fails(_spec(), {"x": value}, "x", "finite")


@pytest.mark.parametrize("opt", ["b", "f"])
@pytest.mark.parametrize("value", [1, 0, "true", "false", "yes", 1.0])
def test_bool_and_flag_take_true_or_false_only(opt, value):
    _fails(_spec(), {opt: value}, opt, "true or false")


@pytest.mark.parametrize("value", [3, 1.5, True, ["a"]])
def test_str_refuses_non_strings(value):
    _fails(_spec(), {"s": value}, "s", "string")


def test_str_length_and_characters():
    assert validate_options(_spec(), {"s": "x" * 1024})["s"] == "x" * 1024
    _fails(_spec(), {"s": "x" * 1025}, "s", "1024")
    for bad in ("a\nb", "a\rb", "a\x00b"):
        _fails(_spec(), {"s": bad}, "s", "line breaks")
    # Shell metacharacters are just characters: options never reach a shell.
    assert validate_options(_spec(), {"s": "; rm -rf / #"})["s"] == "; rm -rf / #"


def test_range_limits_inclusive():
    assert validate_options(_spec(), {"n": 1, "x": 0.0})["n"] == 1
    assert validate_options(_spec(), {"n": 10, "x": 1.0})["x"] == 1.0
    _fails(_spec(), {"n": 0}, "n", ">= 1")
    _fails(_spec(), {"n": 11}, "n", "<= 10")
    _fails(_spec(), {"x": -0.01}, "x", ">= 0.0")
    _fails(_spec(), {"x": 2}, "x", "<= 1.0")


def test_enum_and_allowed_values():
    _fails(_spec(), {"e": "HARD"}, "e", "one of")
    _fails(_spec(), {"e": "$(touch /tmp/x)"}, "e", "one of")
    assert validate_options(_spec(), {"k": 4})["k"] == 4
    _fails(_spec(), {"k": 3}, "k", "one of")
    # True == 1 in Python: an enum of ints must still refuse a bool.
    spec = _spec(m=OptionSpec("m", "int", "m", default=1, allowed_values=[0, 1]))
    _fails(spec, {"m": True}, "m")


def test_mandatory_missing():
    spec = _spec(req=OptionSpec("req", "float", "needed", mandatory=True))
    _fails(spec, {}, "req", "mandatory")
    _fails(spec, {"req": None}, "req", "null")
    assert validate_options(spec, {"req": 2})["req"] == 2.0


def test_null_only_for_options_unset_by_default():
    assert validate_options(_spec(), {"opt": None})["opt"] is None
    _fails(_spec(), {"n": None}, "n", "null")
    _fails(_spec(), {"b": None}, "b", "null")


def test_constraints():
    _fails(_spec(), {"lo": 3.0}, "lo", "<= hi")
    assert validate_options(_spec(), {"lo": 2.0})["lo"] == 2.0  # equal is fine
    _fails(_spec(), {"p": 1}, "q", "together")
    _fails(_spec(), {"q": 1}, "p", "together")
    _fails(_spec(), {"opt": 0.5}, "opt", "'p'")


def test_real_specs_are_strict():
    aegean = get_app("aegean")
    assert validate_options(aegean, {"seedclip": 6})["seedclip"] == 6.0
    _fails(aegean, {"seedclip": "5"}, "seedclip")
    _fails(aegean, {"seedclip": 0.5}, "seedclip", ">=")
    _fails(aegean, {"floodclip": 6.0}, "floodclip", "seedclip")
    _fails(aegean, {"negative": 1}, "negative")
    _fails(aegean, {"maxsummits": True}, "maxsummits")
    _fails(aegean, {"bmaj": 10.0}, "bmin", "together")
    _fails(aegean, {"bpa": 10.0}, "bpa", "bmaj")
    _fails(aegean, {"bmaj": 5.0, "bmin": 6.0}, "bmin", "bmaj")
    _fails(aegean, {"image": "/etc/passwd"}, "image")
    pybdsf = get_app("pybdsf")
    _fails(pybdsf, {"catalog_type": "; rm -rf / #"}, "catalog_type", "one of")
    _fails(pybdsf, {"rms_box_size": 60}, "rms_box_step", "together")
    _fails(pybdsf, {"rms_box_size": 20, "rms_box_step": 30}, "rms_box_step", "rms_box_size")
    sep = get_app("sep")
    _fails(sep, {"filter_kernel": "$(touch /tmp/x)"}, "filter_kernel")
    _fails(sep, {"minarea": 5.0}, "minarea", "integer")
    caesar = get_app("caesar")
    assert validate_options(caesar, {"seedthr": 4, "fitsources": True})["fitsources"] is True
    _fails(caesar, {"nthreads": 4}, "nthreads", "<= 1")
    _fails(caesar, {"no-mpi": False}, "no-mpi", "one of")
    _fails(caesar, {"inputfile": "x.fits"}, "inputfile", "data_inputs")
