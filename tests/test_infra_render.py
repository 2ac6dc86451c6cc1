"""The manifests generated from stack.yml (infra/render.py) are up to date and say what stack.yml says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from caesar_faas.local.stack import load_stack

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("infra_render", ROOT / "infra/render.py")
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)


def docs(relative: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / relative).read_text()) if d]


def test_generated_files_are_up_to_date(capsys):
    assert render.main(["--check"]) == 0, capsys.readouterr().err


def test_check_notices_a_stale_file(tmp_path, monkeypatch):
    """The check above can fail: a changed stack.yml makes a committed file stale."""
    for name in ("stack.yml", "deploy.env.yml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    before = render.render(tmp_path)
    stack = yaml.safe_load((tmp_path / "stack.yml").read_text())
    stack["functions"]["monitor"]["annotations"]["schedule"] = "*/5 * * * *"
    (tmp_path / "stack.yml").write_text(yaml.safe_dump(stack, sort_keys=False))
    after = render.render(tmp_path)
    changed = [p.name for p in before if before[p] != after[p]]
    assert changed == ["pingsource.yaml"]


def test_a_knative_service_per_function():
    stack = load_stack(ROOT / "stack.yml")
    services = {d["metadata"]["name"]: d for d in docs("infra/knative/services.yaml")}
    assert set(services) == set(stack.functions)
    for name, service in services.items():
        spec = service["spec"]["template"]["spec"]
        env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
        assert env["CAESAR_JOB_BACKEND"] == "kubernetes"
        assert spec["containers"][0]["image"].endswith(f"/{name}:0.1.0")
        launcher = spec.get("serviceAccountName") == "caesar-job-launcher"
        assert launcher == (name in ("dispatcher", "monitor")), name


def test_pingsource_follows_the_cron_bindings():
    stack = load_stack(ROOT / "stack.yml")
    sources = {d["spec"]["sink"]["ref"]["name"]: d["spec"]["schedule"] for d in docs("infra/knative/pingsource.yaml")}
    assert sources == {s.function: s.cron for s in stack.schedules()}
    assert "monitor" in sources


def test_dedicated_launchers_keep_the_openfaas_routing():
    objects = docs("infra/k8s/alternatives/job-launcher-deployments.yaml")
    deployments = {d["metadata"]["name"]: d for d in objects if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"] for d in objects if d["kind"] == "Service"}
    assert set(deployments) == services == {"dispatcher", "monitor"}
    for name, deployment in deployments.items():
        assert deployment["metadata"]["namespace"] == "openfaas-fn"
        assert deployment["spec"]["template"]["metadata"]["labels"]["faas_function"] == name
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "caesar-job-launcher"
