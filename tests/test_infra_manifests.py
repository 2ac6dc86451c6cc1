"""The deployment files (issue 5 points 5 and 7): every YAML file parses; every Kubernetes manifest
under infra/ validates with kubernetes-validate --strict on 1.28 and the newest version it knows;
custom resources (Knative) are checked for their required fields; the pieces agree with each other
and with the code (subjects, secret names, RBAC verbs, images, kustomizations)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml
from kubernetes.utils import parse_quantity

from caesar_faas.backends.k8s_manifest import SECRET_ENV
from caesar_faas.backends.k8s_options import KubernetesOptions
from caesar_faas.events.subjects import STORAGE_EVENTS
from tests.fixtures.k8s import K8S_VERSIONS, restricted_violations

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
SKIP_DIRS = {".git", ".venv", "build", "var", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}
KUSTOMIZATIONS = sorted(INFRA.rglob("kustomization.yaml"))
EXTERNAL_NAMESPACES = {"openfaas-fn"}  # created by the OpenFaaS chart
CUSTOM_KINDS = {("serving.knative.dev/v1", "Service"), ("sources.knative.dev/v1", "PingSource")}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "DaemonSet"}


def repo_yaml_files() -> list[Path]:
    out = []
    for path in ROOT.rglob("*"):
        if path.suffix in (".yaml", ".yml") and not (set(path.relative_to(ROOT).parts) & SKIP_DIRS):
            out.append(path)
    return sorted(out)


def patch_files() -> set[Path]:
    out = set()
    for kustomization in KUSTOMIZATIONS:
        doc = yaml.safe_load(kustomization.read_text())
        for patch in doc.get("patches") or []:
            out.add((kustomization.parent / patch["path"]).resolve())
    return out


def manifest_docs() -> list[tuple[str, dict]]:
    """(file:index, document) of every Kubernetes object under infra/ (not kustomizations, patches
    or non-Kubernetes YAML such as Helm values)."""
    out = []
    patches = patch_files()
    for path in sorted(INFRA.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.resolve() in patches:
            continue
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                out.append((f"{path.relative_to(ROOT)}:{i}", doc))
    return out


DOCS = manifest_docs()
BUILTIN = [(where, doc) for where, doc in DOCS if (doc["apiVersion"], doc["kind"]) not in CUSTOM_KINDS]
CUSTOM = [(where, doc) for where, doc in DOCS if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS]


def find(kind: str, name: str, namespace: str | None = None) -> dict:
    for _, doc in DOCS:
        meta = doc["metadata"]
        if doc["kind"] == kind and meta["name"] == name and (namespace is None or meta.get("namespace") == namespace):
            return doc
    raise AssertionError(f"no {kind} {namespace}/{name} under infra/")


def pod_spec(doc: dict) -> dict | None:
    if doc["kind"] in WORKLOAD_KINDS:
        return doc["spec"]["template"]["spec"]
    if (doc["apiVersion"], doc["kind"]) == ("serving.knative.dev/v1", "Service"):
        return doc["spec"]["template"]["spec"]
    return None


def test_every_yaml_file_in_the_repository_parses():
    files = repo_yaml_files()
    assert ROOT / "stack.yml" in files and INFRA / "k8s/kustomization.yaml" in files
    for path in files:
        list(yaml.safe_load_all(path.read_text()))


def test_there_is_something_to_validate():
    kinds = {doc["kind"] for _, doc in DOCS}
    assert {"Namespace", "Role", "RoleBinding", "StatefulSet", "Job", "Deployment", "Secret",
            "NetworkPolicy", "Service", "PingSource"} <= kinds


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("where", "doc"), BUILTIN, ids=[w for w, _ in BUILTIN])
def test_manifest_validates_strictly(where, doc, version):
    assert kubernetes_validate.validate(doc, version, strict=True) == version


@pytest.mark.parametrize(("where", "doc"), CUSTOM, ids=[w for w, _ in CUSTOM])
def test_custom_resource_has_its_required_fields(where, doc):
    meta = doc.get("metadata") or {}
    assert meta.get("name") and meta.get("namespace"), where
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", meta["name"]) and len(meta["name"]) <= 63
    if doc["kind"] == "Service":
        spec = doc["spec"]["template"]["spec"]
        containers = spec["containers"]
        assert len(containers) == 1 and containers[0]["image"]
        assert [p["containerPort"] for p in containers[0].get("ports", [])] in ([], [8080])
        assert isinstance(spec.get("timeoutSeconds", 300), int)
        # The container part is a core/v1 Container: validate it with the Pod schema.
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": meta["name"]},
               "spec": {k: v for k, v in spec.items() if k != "timeoutSeconds"}}
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(pod, version, strict=True)
    else:  # PingSource
        spec = doc["spec"]
        assert len(spec["schedule"].split()) == 5
        sink = spec["sink"]
        assert "ref" in sink or "uri" in sink
        if "ref" in sink:
            ref = sink["ref"]
            assert ref["apiVersion"] and ref["kind"] and ref["name"]
            find(ref["kind"], ref["name"], ref.get("namespace", meta["namespace"]))


def test_namespaced_objects_name_a_known_namespace():
    declared = {doc["metadata"]["name"] for _, doc in DOCS if doc["kind"] == "Namespace"}
    for where, doc in DOCS:
        if doc["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            continue
        ns = doc["metadata"].get("namespace")
        assert ns, f"{where}: no namespace (kubectl would use the current one)"
        assert ns in declared | EXTERNAL_NAMESPACES, f"{where}: unknown namespace {ns}"


@pytest.mark.parametrize(("where", "doc"), [(w, d) for w, d in DOCS if pod_spec(d) is not None],
                         ids=[w for w, d in DOCS if pod_spec(d) is not None])
def test_workloads_are_restricted_limited_and_pinned(where, doc):
    spec = pod_spec(doc)
    assert restricted_violations(spec) == [], where
    for container in spec["containers"] + spec.get("initContainers", []):
        image = container["image"]
        assert re.search(r"(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$", image.split("/")[-1]), f"{image} is not pinned"
        assert not image.endswith(":latest")
        resources = container.get("resources") or {}
        for part in ("requests", "limits"):
            assert resources.get(part, {}).get("memory"), f"{where} {container['name']}: no memory {part}"
            for quantity in resources[part].values():
                parse_quantity(quantity)
        assert parse_quantity(resources["requests"]["memory"]) <= parse_quantity(resources["limits"]["memory"])
    if doc["kind"] in WORKLOAD_KINDS and not spec.get("serviceAccountName"):
        assert spec.get("automountServiceAccountToken") is False, f"{where}: mounts an API token it never uses"


def test_secret_templates_hold_placeholders_only():
    secrets = [(w, d) for w, d in DOCS if d["kind"] == "Secret"]
    assert secrets
    not_secret = {"CAESAR_STORAGE_URL", "CAESAR_NATS_URL"}  # addresses, kept in the Secret for one place
    for where, doc in secrets:
        assert "secrets/" in where and where.split(":")[0].endswith(".example.yaml"), where
        assert "data" not in doc, f"{where}: base64 data could hide a real value"
        for key, value in doc["stringData"].items():
            if key in not_secret:
                assert "@" not in value, f"{where}: {key} carries credentials"
            else:
                assert "REPLACE_ME" in value, f"{where}: {key} is not a placeholder"


def test_secret_templates_are_not_applied_by_kustomize():
    for kustomization in KUSTOMIZATIONS:
        resources = yaml.safe_load(kustomization.read_text()).get("resources") or []
        assert not any("secret" in r for r in resources), kustomization


def test_kustomizations_list_existing_files_and_every_manifest():
    for kustomization in KUSTOMIZATIONS:
        doc = yaml.safe_load(kustomization.read_text())
        assert doc["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and doc["kind"] == "Kustomization"
        for item in doc.get("resources", []) + [p["path"] for p in doc.get("patches", [])]:
            assert (kustomization.parent / item).exists(), f"{kustomization}: {item} missing"
        listed = {(kustomization.parent / r).resolve() for r in doc.get("resources", [])}
        listed |= {(kustomization.parent / p["path"]).resolve() for p in doc.get("patches", [])}
        for path in kustomization.parent.glob("*.yaml"):
            if path.name != "kustomization.yaml":
                assert path.resolve() in listed, f"{path} is not in {kustomization}"


def test_kustomize_patches_target_objects_of_the_base():
    for patch in patch_files():
        for doc in yaml.safe_load_all(patch.read_text()):
            base = find(doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace"))
            names = {c["name"] for c in base["spec"]["template"]["spec"]["containers"]}
            for container in doc["spec"]["template"]["spec"]["containers"]:
                assert container["name"] in names, f"{patch}: no container {container['name']}"


def test_kustomize_image_overrides_name_images_in_use():
    images = {c["image"].rsplit(":", 1)[0] for _, d in DOCS if pod_spec(d)
              for c in pod_spec(d)["containers"] + pod_spec(d).get("initContainers", [])}
    for kustomization in KUSTOMIZATIONS:
        for item in yaml.safe_load(kustomization.read_text()).get("images") or []:
            assert item["name"] in images


def test_job_launcher_role_is_minimal_and_bound_to_openfaas_default():
    role = find("Role", "caesar-job-launcher", "caesar-jobs")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules == {(("batch",), ("jobs",)): {"create", "get", "list", "watch", "delete"},
                     (("",), ("pods",)): {"get", "list"},
                     (("",), ("pods/log",)): {"get"}}
    bindings = [d for _, d in DOCS if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == "caesar-job-launcher"]
    subjects = {(s["namespace"], s["name"]) for b in bindings for s in b["subjects"]}
    assert ("openfaas-fn", "default") in subjects
    assert all(b["metadata"]["namespace"] == "caesar-jobs" for b in bindings)
    assert not [d for _, d in DOCS if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_jobs_namespace_enforces_the_restricted_profile():
    labels = find("Namespace", "caesar-jobs")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert KubernetesOptions().runner_secret == "caesar-runner"


def test_runner_secret_template_holds_only_what_the_job_references():
    """Job pods get the NATS URL from the Secret and nothing else: no storage URL, no S3 keys
    (they move their data through presigned URLs in CAESAR_JOB)."""
    secret = find("Secret", KubernetesOptions().runner_secret, "caesar-jobs")
    assert set(secret["stringData"]) == set(SECRET_ENV) == {"CAESAR_NATS_URL", "CAESAR_NATS_TOKEN"}
    assert not {"CAESAR_STORAGE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(secret["stringData"])


def test_minio_publishes_uploads_to_the_storage_subject():
    notification = yaml.safe_load((ROOT / "events/minio/notification.yaml").read_text())
    target = notification["target"]
    assert target["subject"] == STORAGE_EVENTS
    minio = find("StatefulSet", "minio", "caesar")
    env = {e["name"]: e for e in minio["spec"]["template"]["spec"]["containers"][0]["env"]}
    ident = target["identifier"]
    assert env[f"MINIO_NOTIFY_NATS_ENABLE_{ident}"]["value"] == "on"
    assert env[f"MINIO_NOTIFY_NATS_SUBJECT_{ident}"]["value"] == STORAGE_EVENTS
    assert env[f"MINIO_NOTIFY_NATS_JETSTREAM_{ident}"]["value"] == "on"
    assert env[f"MINIO_NOTIFY_NATS_ADDRESS_{ident}"]["value"] == target["address"]
    assert target["address"].split(":")[0].startswith(find("Service", "nats", "caesar")["metadata"]["name"] + ".caesar.")
    assert target["arn"] == f"arn:minio:sqs::{ident}:nats"
    queue = env[f"MINIO_NOTIFY_NATS_QUEUE_DIR_{ident}"]["value"]
    mounts = {m["mountPath"] for m in minio["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert queue in mounts
    for key in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        assert "secretKeyRef" in env[key]["valueFrom"]


def test_minio_setup_job_creates_the_bucket_and_the_rule():
    notification = yaml.safe_load((ROOT / "events/minio/notification.yaml").read_text())
    job = find("Job", "minio-setup", "caesar")["spec"]["template"]["spec"]
    bucket = f"caesar/{notification['bucket']}"
    mb = job["initContainers"][0]["command"] + job["initContainers"][0]["args"]
    assert mb[0] == "mc" and "mb" in mb and "--ignore-existing" in mb and bucket in mb
    rule = job["containers"][0]["command"] + job["containers"][0]["args"]
    assert rule[rule.index("event") + 1] == "add"
    assert rule[rule.index("--prefix") + 1] == notification["rule"]["prefix"] == "files/"
    assert rule[rule.index("--event") + 1] == notification["rule"]["mc_events"]
    assert rule[-2:] == [bucket, notification["target"]["arn"]]
    # the bucket is the one the functions use
    deploy_env = yaml.safe_load((ROOT / "deploy.env.yml").read_text())["environment"]
    assert urlparse(deploy_env["CAESAR_STORAGE_URL"]).netloc == notification["bucket"]


def test_nats_has_jetstream_on_a_persistent_volume():
    nats = find("StatefulSet", "nats", "caesar")
    conf = find("ConfigMap", "nats-config", "caesar")["data"]["nats.conf"]
    assert "jetstream" in conf and "store_dir: /data" in conf
    mounts = {m["mountPath"]: m["name"] for m in nats["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/data"] in {t["metadata"]["name"] for t in nats["spec"]["volumeClaimTemplates"]}
    deploy_env = yaml.safe_load((ROOT / "deploy.env.yml").read_text())["environment"]
    assert urlparse(deploy_env["CAESAR_NATS_URL"]).hostname == "nats.caesar.svc.cluster.local"


def test_mongodb_has_auth_and_a_persistent_volume():
    mongo = find("StatefulSet", "mongodb", "caesar")
    container = mongo["spec"]["template"]["spec"]["containers"][0]
    assert "--auth" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    for key in ("MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"):
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == "caesar-mongodb"
    assert any(m["mountPath"] == "/data/db" and m["name"] == "data" for m in container["volumeMounts"])
    assert mongo["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    find("Secret", "caesar-mongodb", "caesar")


def test_connector_runs_the_package_module_against_the_gateway():
    connector = find("Deployment", "caesar-connector", "caesar")["spec"]["template"]["spec"]
    container = connector["containers"][0]
    assert container["command"] == ["python", "-m", "caesar_faas.connector"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CAESAR_GATEWAY_URL"] == "http://gateway.openfaas.svc.cluster.local:8080"
    assert env["CAESAR_NATS_URL"] == yaml.safe_load((ROOT / "deploy.env.yml").read_text())["environment"][
        "CAESAR_NATS_URL"]
    sources = connector["volumes"][0]["projected"]["sources"]
    assert {"name": "caesar-jwt-secret"} in [s["secret"] for s in sources]
    find("Secret", "caesar-jwt-secret", "caesar")
    patch = yaml.safe_load((INFRA / "knative/connector-knative.yaml").read_text())
    patched = {e["name"]: e["value"] for e in patch["spec"]["template"]["spec"]["containers"][0]["env"]}
    template = patched["CAESAR_CONNECTOR_TARGET_TEMPLATE"]
    assert template.format(name="dispatcher") == "http://dispatcher.caesar-fn.svc.cluster.local"
