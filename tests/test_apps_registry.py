"""App specs: every spec loads and is coherent, describe has caesar-rest's shape, bad specs fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from caesar_faas.apps import describe, get_app, list_apps, summary, validate_options
from caesar_faas.apps.registry import SpecError, load_spec
from caesar_faas.runner.finders import load_adapter

DESCRIBE_KEYS = {"mandatory", "type", "description", "default", "min", "max", "enum",
                 "allowed_values", "advanced", "category"}
LOCAL_APPS = {"aegean", "pybdsf", "sep"}
IMAGE_APPS = {"caesar", "mrcnn"}


def test_all_apps_load():
    names = [spec.name for spec in list_apps()]
    assert names == sorted(LOCAL_APPS | IMAGE_APPS)
    assert get_app("nope") is None
    assert get_app(None) is None  # type: ignore[arg-type]
    assert get_app("aegean") is get_app("aegean")  # loaded once


@pytest.mark.parametrize("name", sorted(LOCAL_APPS | IMAGE_APPS))
def test_spec_is_complete(name):
    spec = get_app(name)
    assert spec.description and spec.version and spec.default_timeout > 0
    assert spec.input_option and spec.input_option not in spec.options
    # The runner is the entrypoint of every job image (the container apps' runner lives in its own
    # virtualenv on top of the upstream image, infra/images/Dockerfile.caesar-runner).
    assert spec.command[-2:] == ["-m", "caesar_faas.runner"] and spec.command[0].endswith("python")
    assert set(spec.resources) == {"requests", "limits"}
    for part in spec.resources.values():
        assert set(part) == {"cpu", "memory"}
    assert spec.shm_size and spec.work_size
    assert "${" not in spec.image
    # An empty job_inputs runs with the defaults: they must be valid, constraints included.
    defaults = validate_options(spec, {})
    assert list(defaults) == list(spec.options)


@pytest.mark.parametrize("name", sorted(LOCAL_APPS))
def test_local_apps_have_an_adapter(name):
    spec = get_app(name)
    assert spec.runs_locally and spec.local_entry == name
    assert spec.image == "caesar-faas/runner:0.1.0"
    adapter = load_adapter(spec.local_entry)
    assert callable(adapter.check_image) and callable(adapter.argv) and callable(adapter.read_catalog)


@pytest.mark.parametrize("name", sorted(IMAGE_APPS))
def test_image_apps_do_not_run_locally(name):
    spec = get_app(name)
    assert not spec.runs_locally and spec.local_entry is None
    assert spec.image == f"caesar-faas/{name}-runner:0.1.0"  # the runner layered on the upstream image
    assert "layered" in spec.description and "sriggi/" in spec.description and "local backend" in spec.description


def test_load_adapter_refuses_other_modules():
    for bad in ("fitsinfo.x", "../x", "sep_main", "os", ""):
        with pytest.raises((ValueError, ModuleNotFoundError)):
            load_adapter(bad)


def test_caesar_exposes_its_real_options():
    spec = get_app("caesar")
    assert len(spec.options) >= 30
    categories = {opt.category for opt in spec.options.values()}
    assert {"background", "compact-sources", "fitting", "extended-sources", "run"} <= categories
    for name in ("seedthr", "mergethr", "bkgbox", "bkggrid", "fitsources", "fit-maxcomponents",
                 "extsfinder", "saliency-thr", "nthreads", "tilesize"):
        assert name in spec.options
    assert spec.input_option == "inputfile"


def test_mrcnn_options():
    spec = get_app("mrcnn")
    assert {"scoreThr", "iouThr", "imgsize", "split_img_in_tiles"} <= set(spec.options)
    assert spec.input_option == "image"


@pytest.mark.parametrize("name", sorted(LOCAL_APPS))
def test_local_apps_expose_the_astronomers_knobs(name):
    wanted = {
        "aegean": {"seedclip", "floodclip", "maxsummits", "bane_grid", "bane_box", "negative",
                   "bmaj", "bmin", "bpa"},
        "pybdsf": {"thresh_pix", "thresh_isl", "rms_box_size", "rms_box_step", "adaptive_rms_box",
                   "atrous_do", "catalog_type", "bmaj", "bmin", "bpa", "frequency"},
        "sep": {"thresh", "minarea", "bkg_box", "bkg_filter", "deblend_nthresh", "deblend_cont",
                "clean", "bmaj", "bmin", "bpa"},
    }[name]
    assert wanted <= set(get_app(name).options)
    assert get_app("aegean").options["negative"].default is False


@pytest.mark.parametrize("name", sorted(LOCAL_APPS | IMAGE_APPS))
def test_describe_shape(name):
    spec = get_app(name)
    out = describe(spec)
    assert list(out) == list(spec.options)
    for opt_name, entry in out.items():
        assert set(entry) == DESCRIBE_KEYS, opt_name
        assert entry["type"] in ("none", "int", "float", "str", "bool")
        assert isinstance(entry["enum"], bool) and entry["advanced"] in (0, 1)
        assert entry["description"] and entry["category"]
        if entry["enum"]:
            assert entry["default"] is None or entry["default"] in entry["allowed_values"]
        if entry["type"] in ("none", "bool"):
            assert entry["default"] in (True, False)


def test_describe_values():
    seed = describe(get_app("aegean"))["seedclip"]
    assert seed["type"] == "float" and seed["default"] == 5.5 and seed["min"] == 1.0
    assert seed["enum"] is False and seed["allowed_values"] is None and seed["mandatory"] is False
    cat = describe(get_app("pybdsf"))["catalog_type"]
    assert cat["enum"] is True and cat["allowed_values"] == ["srl", "gaul"] and cat["default"] == "srl"
    assert summary(get_app("caesar"))["runs_locally"] is False
    assert summary(get_app("sep"))["noptions"] == len(get_app("sep").options)


GOOD = textwrap.dedent("""\
    name: demo
    description: a demo
    version: "1"
    input_option: image
    default_timeout: 60
    local_entry: null
    image: demo:1
    command: ["python", "-m", "caesar_faas.runner"]
    resources:
      requests: {cpu: "1", memory: 1Gi}
      limits: {cpu: "1", memory: 2Gi}
    options:
      level:
        type: str
        description: a level
        default: INFO
        enum: [INFO, DEBUG]
    """)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def test_load_spec_accepts_a_good_spec(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.name == "demo" and spec.options["level"].enum == ["INFO", "DEBUG"]
    assert spec.shm_size == "256Mi" and spec.constraints == []


@pytest.mark.parametrize("change, words", [
    (("    enum: [INFO, DEBUG]", "    enum: [INFO, DEBUG, OFF]"), "default or choice"),  # YAML OFF = false
    (("default: INFO", "default: WARN"), "default or choice"),
    (("    type: str", "    type: string"), "type must be"),
    (("image: demo:1", "image: demo:1\nimage: demo:2"), "duplicate"),
    (("image: demo:1", "image: demo:1\nbogus: 1"), "unknown keys"),
    (("input_option: image", "input_option: level"), "must not be a user option"),
    (("name: demo", "name: other"), "file name"),
    (("default_timeout: 60", "default_timeout: -1"), "default_timeout"),
    (("local_entry: null", "local_entry: ../evil"), "local_entry"),
    (("memory: 1Gi", "memory: lots"), "quantity"),
    (("    default: INFO", "    default: INFO\n    mandatory: true"), "mandatory"),
    (("    description: a level", "    description: a level\n    min: 1"), "min"),
    (("options:", "constraints:\n  - {rule: le, options: [level, nope]}\noptions:"), "unknown option"),
])
def test_load_spec_refuses_bad_specs(tmp_path, change, words):
    old, new = change
    assert old in GOOD
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, GOOD.replace(old, new, 1)))
    assert words in str(info.value)


def test_load_spec_refuses_defaults_that_break_a_constraint(tmp_path):
    text = GOOD.replace("options:", "constraints:\n  - {rule: le, options: [a, b]}\noptions:") + (
        "  a: {type: float, description: a, default: 2.0}\n"
        "  b: {type: float, description: b, default: 1.0}\n")
    with pytest.raises(SpecError, match="constraint"):
        load_spec(_write(tmp_path, text))
