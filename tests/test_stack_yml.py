"""stack.yml checked for what faas-cli accepts silently but breaks later (issue 5 point 7): unknown
keys (typos are ignored), non-map `environment`, missing handler folders, copy paths outside the
project, invalid cron expressions, plus the CE limit of 15 functions, secrets and topics that exist,
and gateway timeouts (infra/openfaas/values.yaml) that let every function finish."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from kubernetes.utils import parse_quantity

from caesar_faas.local.cronexpr import CronExpr

ROOT = Path(__file__).resolve().parents[1]
RAW = (ROOT / "stack.yml").read_text()
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
STACK = yaml.safe_load(VAR.sub(lambda m: m.group(2) or "", RAW))
FUNCTIONS = STACK["functions"]

# faas-cli 0.18 stack schema (stack/schema.go): anything else is silently ignored.
TOP_KEYS = {"version", "provider", "functions", "configuration"}
PROVIDER_KEYS = {"name", "gateway", "network"}
CONFIGURATION_KEYS = {"templates", "copy"}
FUNCTION_KEYS = {"lang", "handler", "image", "fprocess", "environment", "secrets", "skip_build", "constraints",
                 "environment_file", "labels", "annotations", "limits", "requests", "readonly_root_filesystem",
                 "build_args", "build_options", "platforms", "namespace"}
RESOURCE_KEYS = {"memory", "cpu"}
WATCHDOG_TIMEOUTS = ("read_timeout", "write_timeout", "exec_timeout")
STORE_TEMPLATES = {"python3-http", "python3-http-debian"}  # pulled by `faas-cli template store pull`
DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$")


def go_seconds(text: str) -> float:
    assert DURATION.match(str(text)), f"{text!r} is not a Go duration"
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ns|us|ms|s|m|h)", str(text)))


def template_handler_files(lang: str) -> list[str]:
    """Paths under function/ that template/<lang>/Dockerfile COPYs one by one."""
    dockerfile = ROOT / "template" / lang / "Dockerfile"
    if not dockerfile.exists():
        return []
    found = []
    for line in dockerfile.read_text().splitlines():
        words = [w for w in line.split() if not w.startswith("--")]
        if words and words[0] == "COPY":
            found += [w.removeprefix("function/") for w in words[1:-1] if w.startswith("function/") and w != "function/"]
    return found


def secret_templates() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for doc in yaml.safe_load_all((ROOT / "infra/k8s/secrets/caesar-secrets.example.yaml").read_text()):
        out.setdefault(doc["metadata"]["namespace"], set()).add(doc["metadata"]["name"])
    return out


def test_top_level_shape():
    assert set(STACK) <= TOP_KEYS, f"unknown top-level keys {set(STACK) - TOP_KEYS}"
    assert str(STACK["version"]) == "1.0"
    assert set(STACK["provider"]) <= PROVIDER_KEYS and STACK["provider"]["name"] == "openfaas"
    assert set(STACK.get("configuration") or {}) <= CONFIGURATION_KEYS


def test_community_edition_limit():
    assert 0 < len(FUNCTIONS) <= 15
    assert all(re.fullmatch(r"[a-z][a-z0-9-]{0,62}", name) for name in FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_keys_and_types(name):
    fn = FUNCTIONS[name]
    assert set(fn) <= FUNCTION_KEYS, f"{name}: unknown keys {set(fn) - FUNCTION_KEYS} (faas-cli ignores them)"
    for key in ("lang", "handler", "image"):
        assert isinstance(fn.get(key), str) and fn[key], f"{name}: {key} missing"
    for key in ("environment", "build_args", "labels", "annotations"):
        value = fn.get(key)
        assert value is None or isinstance(value, dict), f"{name}: {key} must be a map"
        for k, v in (value or {}).items():
            assert isinstance(v, (str, int, float, bool)), f"{name}: {key}.{k} must be a scalar"
            if key in ("labels", "annotations"):
                assert isinstance(v, str), f"{name}: {key}.{k} must be a string (quote it)"
    for key in ("secrets", "environment_file", "constraints", "build_options"):
        value = fn.get(key)
        assert value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value)), key
    for key in ("limits", "requests"):
        resources = fn.get(key) or {}
        assert set(resources) <= RESOURCE_KEYS, f"{name}: {key} keys {set(resources)}"
        for quantity in resources.values():
            parse_quantity(str(quantity))
    for resource in RESOURCE_KEYS:
        if resource in (fn.get("requests") or {}) and resource in (fn.get("limits") or {}):
            assert parse_quantity(str(fn["requests"][resource])) <= parse_quantity(str(fn["limits"][resource]))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_files_exist(name):
    fn = FUNCTIONS[name]
    handler = (ROOT / fn["handler"]).resolve()
    assert handler.is_relative_to(ROOT) and handler.is_dir(), f"{name}: handler folder {fn['handler']} missing"
    assert (handler / "handler.py").is_file(), f"{name}: no handler.py"
    assert fn["lang"] in STORE_TEMPLATES or (ROOT / "template" / fn["lang"] / "template.yml").is_file()
    # Files the template's Dockerfile copies out of the handler folder must be there, or
    # `faas-cli build` passes the stack and then `docker build` fails on COPY.
    for needed in template_handler_files(fn["lang"]):
        assert (handler / needed).exists(), f"{name}: the {fn['lang']} template copies function/{needed}"
    for env_file in fn.get("environment_file") or []:
        doc = yaml.safe_load((ROOT / env_file).read_text())
        assert set(doc) == {"environment"} and isinstance(doc["environment"], dict), env_file


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_images_come_from_the_registry_variable(name):
    raw = yaml.safe_load(RAW)["functions"][name]["image"]
    assert raw.startswith("${REGISTRY"), f"{name}: image {raw} does not use ${{REGISTRY}}"
    assert re.search(r":[\w${}:.-]+$", raw.split("/")[-1]), f"{name}: image has no tag"


def test_copy_paths_stay_inside_the_project():
    copies = (STACK.get("configuration") or {}).get("copy") or []
    assert copies
    for path in copies:
        assert not Path(path).is_absolute() and ".." not in Path(path).parts, path
        resolved = (ROOT / path).resolve()
        assert resolved.is_relative_to(ROOT) and resolved.exists(), path


def test_environment_values_are_strings_after_yaml():
    """faas-cli passes environment values to Kubernetes as strings; YAML numbers and booleans in an
    environment map are a classic source of surprises ("on" -> true)."""
    for name, fn in FUNCTIONS.items():
        for key, value in (fn.get("environment") or {}).items():
            assert not isinstance(value, bool), f"{name}: {key} is a YAML boolean"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_watchdog_timeouts(name):
    env = FUNCTIONS[name].get("environment") or {}
    assert all(k in env for k in WATCHDOG_TIMEOUTS), f"{name}: set read/write/exec timeouts"
    read, write, execute = (go_seconds(env[k]) for k in WATCHDOG_TIMEOUTS)
    assert execute <= write, f"{name}: exec_timeout beyond write_timeout cuts the answer"


def test_gateway_timeouts_cover_every_function():
    values = yaml.safe_load((ROOT / "infra/openfaas/values.yaml").read_text())
    longest = max(go_seconds((fn.get("environment") or {}).get(k, "0s")) for fn in FUNCTIONS.values()
                  for k in WATCHDOG_TIMEOUTS)
    gateway = values["gateway"]
    assert go_seconds(gateway["upstreamTimeout"]) >= longest
    assert go_seconds(gateway["readTimeout"]) > go_seconds(gateway["upstreamTimeout"])
    assert go_seconds(gateway["writeTimeout"]) > go_seconds(gateway["upstreamTimeout"])
    for key in ("readTimeout", "writeTimeout"):
        assert go_seconds(values["faasnetes"][key]) >= longest


def test_cron_and_topics():
    subjects = yaml.safe_load((ROOT / "events/subjects.yaml").read_text())["subjects"]
    crons = 0
    for name, fn in FUNCTIONS.items():
        annotations = fn.get("annotations") or {}
        topic = annotations.get("topic")
        if topic == "cron-function":
            crons += 1
            schedule = annotations.get("schedule")
            assert isinstance(schedule, str) and len(schedule.split()) == 5, f"{name}: schedule {schedule!r}"
            CronExpr(schedule)  # raises on an invalid expression
        elif topic:
            for subject in topic.split(","):
                assert subject.strip() in subjects, f"{name}: topic {subject} is not in events/subjects.yaml"
            for key in ("caesar.io/max-deliver", "caesar.io/ack-wait"):
                assert key in annotations, f"{name}: {key}"
            assert int(annotations["caesar.io/max-deliver"]) > 0
            go_seconds(annotations["caesar.io/ack-wait"])
        else:
            assert "schedule" not in annotations, f"{name}: a schedule without topic: cron-function"
    assert FUNCTIONS["monitor"]["annotations"]["topic"] == "cron-function" and crons >= 1


def test_cron_validation_rejects_nonsense():
    for bad in ("* * * *", "61 * * * *", "*/0 * * * *", "a b c d e"):
        with pytest.raises(ValueError):
            CronExpr(bad)


def test_secrets_have_templates():
    templates = secret_templates()["openfaas-fn"]
    for name, fn in FUNCTIONS.items():
        for secret in fn.get("secrets") or []:
            assert secret in templates, f"{name}: secret {secret} has no template in infra/k8s/secrets"
