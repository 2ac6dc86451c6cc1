"""The Job manifest of the Kubernetes backend: every rule of ARCHITECTURE §6 / issue 5, and every
variant the backend can produce validated by kubernetes-validate --strict on 1.28 and the newest
version it knows."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from urllib.parse import parse_qsl, unquote, urlsplit

import kubernetes_validate
import pytest
from kubernetes.utils import parse_quantity

from caesar_faas.apps.spec import AppSpec
from caesar_faas.backends.base import LaunchError
from caesar_faas.backends.k8s_manifest import (
    FORBIDDEN_ENV,
    build_job,
    escape_expansion,
    job_labels,
    job_name,
    label_value,
)
from caesar_faas.backends.k8s_options import KubernetesOptions
from caesar_faas.backends.kubernetes import KubernetesBackend
from caesar_faas.config import Settings
from caesar_faas.jobs.transfer import presigned_transfer, transfer_expiry
from caesar_faas.runner.contract import PRODUCT_NAMES, job_document, output_prefix
from caesar_faas.storage import open_storage
from tests.fixtures.k8s import K8S_VERSIONS, restricted_violations, sample_job, sample_spec

VERSIONS = list(K8S_VERSIONS)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
NS = "caesar-jobs"


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of env values and command args (third_party/forked/golang/
    expansion), transcribed: `$$` -> `$`, `$(NAME)` -> env[NAME] when defined, else left as is."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2:end]
                    out.append(env.get(name, f"$({name})"))
                    i = end + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


def container(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]["containers"][0]


def env_of(manifest: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container(manifest)["env"]}


def transfer_of(job: dict, settings: Settings) -> dict:
    """The transfer URLs the backend presigns for job, with the settings' (file://) storage."""
    storage = open_storage(settings.storage_url, settings)
    return presigned_transfer(storage, job, expires=transfer_expiry(job["timeout"]))


def build(job: dict, spec: AppSpec, settings: Settings, options: KubernetesOptions, namespace: str) -> dict:
    return build_job(job, spec, settings, options, namespace, transfer=transfer_of(job, settings))


@pytest.fixture
def manifest(k8s_settings):
    return build(sample_job(), sample_spec(), k8s_settings, KubernetesOptions(), NS)


# --- names and labels -------------------------------------------------------------------------------

def test_job_name_of_a_uuid_is_caesar_dash_id():
    job_id = "0f8c2a9e-5d1b-4c6f-9a7e-3b2d1c0e9f8a"
    assert job_name(job_id) == "caesar-" + job_id


@pytest.mark.parametrize("job_id", ["ABC_def", "x" * 100, "--", "ünïcödé", "a.b.c", "UPPER-" + "9" * 70])
def test_job_name_is_always_a_dns_label(job_id):
    name = job_name(job_id)
    assert len(name) <= 63 and DNS_LABEL.match(name), name
    assert name.startswith("caesar-")


def test_job_names_of_different_ids_differ_even_when_cleaned_alike():
    assert job_name("A_b") != job_name("a-b") != job_name("a.b")
    assert job_name("x" * 80) != job_name("x" * 81)


@pytest.mark.parametrize("owner", ["alice", "a-b_c.d", "x" * 63])
def test_label_value_keeps_valid_values(owner):
    assert label_value(owner) == owner


@pytest.mark.parametrize("owner", ["alice@example.org", "https://idp.example.org/u/42", "x" * 64, "@@@", "ü",
                                   "-lead", "trail.", "a b"])
def test_label_value_sanitises_everything_else(owner):
    value = label_value(owner)
    assert len(value) <= 63 and LABEL_VALUE.match(value), value


def test_label_values_of_distinct_owners_stay_distinct():
    owners = ["alice@example.org", "alice_example.org", "alice@example_org", "x" * 64, "x" * 65]
    assert len({label_value(o) for o in owners}) == len(owners)


def test_labels_and_raw_owner_annotation(manifest, k8s_settings):
    job = sample_job(owner="Alice Smith <alice@example.org>")
    m = build(job, sample_spec(), k8s_settings, KubernetesOptions(), NS)
    labels = m["metadata"]["labels"]
    assert labels["caesar.io/job-id"] == job["id"]
    assert labels["caesar.io/app"] == "sep"
    assert labels["caesar.io/owner"] == label_value(job["owner"]) != job["owner"]
    assert labels["app.kubernetes.io/managed-by"] == "caesar-faas"
    assert labels["app.kubernetes.io/instance"] == m["metadata"]["name"]
    assert m["metadata"]["annotations"]["caesar.io/owner"] == job["owner"]
    # the pod carries the same labels, so `kubectl get pods -l caesar.io/owner=...` works
    assert m["spec"]["template"]["metadata"]["labels"] == labels == job_labels(job)
    for value in labels.values():
        assert LABEL_VALUE.match(value) and len(value) <= 63


# --- the Job spec -----------------------------------------------------------------------------------

def test_job_spec_rules(k8s_settings):
    job = sample_job(timeout=1234.2)
    options = KubernetesOptions(backoff_limit=1, ttl_after_finished=777)
    m = build(job, sample_spec(), k8s_settings, options, NS)
    spec = m["spec"]
    assert m["metadata"]["name"] == f"caesar-{job['id']}" and m["metadata"]["namespace"] == NS
    assert spec["backoffLimit"] == 1
    assert spec["activeDeadlineSeconds"] == 1235  # the timeout, rounded up to whole seconds
    assert spec["ttlSecondsAfterFinished"] == 777
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1]["action"] == "FailJob"
    assert rules[1]["onExitCodes"] == {"containerName": "runner", "operator": "NotIn", "values": [0]}
    assert container(m)["name"] == "runner"


def test_image_command_and_resources_come_from_the_app_spec(k8s_settings):
    spec = sample_spec(image="registry.example.org/caesar-runner:2.0", command=["/opt/runner/bin/python", "-m",
                                                                              "caesar_faas.runner"],
                       resources={"requests": {"cpu": 2, "memory": "4Gi"}, "limits": {"memory": "8Gi"}})
    c = container(build(sample_job(), spec, k8s_settings, KubernetesOptions(), NS))
    assert c["image"] == "registry.example.org/caesar-runner:2.0"
    assert c["command"] == ["/opt/runner/bin/python", "-m", "caesar_faas.runner"]
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}}


def test_default_command_is_the_runner(k8s_settings):
    c = container(build(sample_job(), sample_spec(command=[]), k8s_settings, KubernetesOptions(), NS))
    assert c["command"] == ["python", "-m", "caesar_faas.runner"]


def test_restricted_security_profile(manifest):
    pod = manifest["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    sc = container(manifest)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False


def test_writable_places_are_emptydirs_sized_by_the_spec(k8s_settings):
    spec = sample_spec(shm_size="2Gi", work_size="40Gi")
    m = build(sample_job(), spec, k8s_settings, KubernetesOptions(), NS)
    volumes = {v["name"]: v for v in m["spec"]["template"]["spec"]["volumes"]}
    mounts = {v["mountPath"]: v["name"] for v in container(m)["volumeMounts"]}
    assert mounts == {"/work": "work", "/tmp": "tmp", "/dev/shm": "dshm"}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    assert volumes["work"]["emptyDir"] == {"sizeLimit": "40Gi"}
    assert "sizeLimit" in volumes["tmp"]["emptyDir"]


def test_no_storage_url_and_no_credentials_reach_the_job(k8s_settings, monkeypatch):
    """The Job gets the NATS URL by reference and nothing else from a Secret: no storage URL, no
    envFrom (which would hand it every key of the Secret), no AWS variable, inline or not."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDNOTFORJOBS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-not-for-jobs")
    m = build(sample_job(), sample_spec(), k8s_settings, KubernetesOptions(runner_secret="my-runner"), NS)
    env = env_of(m)
    assert env["CAESAR_NATS_URL"] == {"name": "CAESAR_NATS_URL",
                                      "valueFrom": {"secretKeyRef": {"name": "my-runner", "key": "CAESAR_NATS_URL"}}}
    assert [e["name"] for e in container(m)["env"] if "valueFrom" in e] == ["CAESAR_NATS_URL", "CAESAR_NATS_TOKEN"]
    assert "envFrom" not in container(m)
    assert not set(env) & set(FORBIDDEN_ENV)
    assert not [name for name in env if name.startswith("AWS_")]
    text = json.dumps(m)
    assert k8s_settings.storage_url not in text and str(k8s_settings.objects_dir) not in text
    assert k8s_settings.nats_url not in text and "nats://" not in text
    assert "AKIDNOTFORJOBS" not in text and "secret-not-for-jobs" not in text


def test_runner_contract_env_is_inline_with_the_transfer_urls(k8s_settings):
    job = sample_job()
    transfer = transfer_of(job, k8s_settings)
    m = build_job(job, sample_spec(), k8s_settings, KubernetesOptions(), NS, transfer=transfer)
    env = env_of(m)
    doc = json.loads(expand(env["CAESAR_JOB"]["value"], {}))
    assert doc == job_document(job, transfer)
    assert doc["transfer"]["input_url"] == transfer["input_url"]
    assert set(doc["transfer"]["product_urls"]) == set(PRODUCT_NAMES)
    assert env["CAESAR_WORKDIR"]["value"] == "/work"
    assert env["HOME"]["value"] == "/work"
    assert env["TMPDIR"]["value"] == "/work/tmp"
    assert env["OPENBLAS_NUM_THREADS"]["value"] == "1"
    assert container(m)["workingDir"] == "/work"


def test_transfer_urls_are_scoped_to_the_job(k8s_settings):
    """One GET of the input key, one PUT per product under the job's prefix: no other key, no
    other method, valid for the job's timeout plus the queueing margin."""
    job = sample_job(timeout=7200)
    before = time.time()
    transfer = transfer_of(job, k8s_settings)
    prefix = output_prefix(job["owner"], job["id"])

    def parts(url: str) -> tuple[str, dict[str, str]]:
        split = urlsplit(url)
        assert url.startswith("http://caesar.example.org/storage/o/")
        return unquote(split.path.removeprefix("/storage/o/")), dict(parse_qsl(split.query))

    key, query = parts(transfer["input_url"])
    assert key == job["input"]["key"] and "max_size" not in query and "size" not in query
    assert int(before) + 7200 + 86400 <= int(query["expires"]) <= time.time() + 7200 + 86400
    assert sorted(transfer["product_urls"]) == sorted(PRODUCT_NAMES)
    for name, url in transfer["product_urls"].items():
        key, query = parts(url)
        assert key == prefix + name
        assert "max_size" in query and "size" not in query  # a PUT grant of any size up to the cap
    assert transfer_expiry(10 * 24 * 3600) == 7 * 24 * 3600  # never beyond SigV4's 7 days
    assert transfer_expiry(0.5) == 1 + 86400


@pytest.mark.parametrize("text", ["$(CAESAR_STORAGE_URL)", "$$(CAESAR_NATS_URL)", "$", "a$", "$$", "$(", "$(X",
                                  "cost $5 (approx)", "$(HOME)/x"])
def test_option_strings_survive_kubernetes_expansion(k8s_settings, text):
    """A user's option text must reach the runner unchanged, never expanded into a secret."""
    job = sample_job(options={"label": text})
    m = build(job, sample_spec(), k8s_settings, KubernetesOptions(), NS)
    secret_values = {"CAESAR_STORAGE_URL": "s3://SECRET", "CAESAR_NATS_URL": "nats://SECRET", "HOME": "/work"}
    raw = env_of(m)["CAESAR_JOB"]["value"]
    doc = json.loads(expand(raw, secret_values))
    assert doc["options"]["label"] == text
    assert escape_expansion("a$(B)") == "a$$(B)"
    # The transfer URLs are inside the same document and get the same protection.
    transfer = {"input_url": f"https://s3.example.org/b/in?x={text}", "product_urls": {"job.log": text}}
    m = build_job(job, sample_spec(), k8s_settings, KubernetesOptions(), NS, transfer=transfer)
    assert json.loads(expand(env_of(m)["CAESAR_JOB"]["value"], secret_values))["transfer"] == transfer


def test_optional_service_account_and_pull_secret(k8s_settings):
    options = KubernetesOptions(service_account="caesar-runner", image_pull_secret="regcred",
                                image_pull_policy="Always")
    m = build(sample_job(), sample_spec(), k8s_settings, options, NS)
    pod = m["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "caesar-runner"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert container(m)["imagePullPolicy"] == "Always"
    default = build(sample_job(), sample_spec(), k8s_settings, KubernetesOptions(), NS)["spec"]["template"]["spec"]
    assert "serviceAccountName" not in default and "imagePullSecrets" not in default


def test_app_without_image_cannot_run(k8s_settings):
    with pytest.raises(ValueError, match="no container image"):
        build(sample_job(), sample_spec(image=""), k8s_settings, KubernetesOptions(), NS)
    backend = KubernetesBackend(k8s_settings, options=KubernetesOptions(),
                                get_app=lambda name: sample_spec(image=""))
    with pytest.raises(LaunchError) as info:
        backend.manifest(sample_job())
    assert info.value.error_class == "usage"
    assert backend._storage is None  # refused before any storage was needed


def test_backend_manifest_presigns_with_the_service_storage(k8s_settings):
    backend = KubernetesBackend(k8s_settings, options=KubernetesOptions(), get_app=lambda name: sample_spec())
    assert backend._storage is None  # building the backend opens nothing
    job = sample_job()
    doc = json.loads(expand(env_of(backend.manifest(job))["CAESAR_JOB"]["value"], {}))
    storage = backend.storage
    assert storage.url == k8s_settings.storage_url
    assert storage.signer.verify("GET", job["input"]["key"],
                                 dict(parse_qsl(urlsplit(doc["transfer"]["input_url"]).query)))
    given = transfer_of(job, k8s_settings)
    assert json.loads(expand(env_of(backend.manifest(job, given))["CAESAR_JOB"]["value"], {}))["transfer"] == given


def test_a_storage_that_cannot_presign_is_a_system_error(k8s_settings, monkeypatch):
    """s3:// without any credentials cannot sign: the launch is retried later, not failed."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = dataclasses.replace(k8s_settings, storage_url="s3://caesar?endpoint_url=http://127.0.0.1:1")
    backend = KubernetesBackend(settings, options=KubernetesOptions(), get_app=lambda name: sample_spec())
    with pytest.raises(LaunchError) as info:
        backend.manifest(sample_job())
    assert info.value.error_class == "system" and "presign" in str(info.value)


def test_unknown_app_is_a_usage_error(k8s_settings):
    def get_app(name: str) -> AppSpec:
        raise KeyError(name)

    backend = KubernetesBackend(k8s_settings, options=KubernetesOptions(), get_app=get_app)
    with pytest.raises(LaunchError) as info:
        backend.manifest(sample_job(app="nope"))
    assert info.value.error_class == "usage"


def test_options_from_env(monkeypatch):
    monkeypatch.setenv("CAESAR_K8S_PENDING_GRACE", "42")
    monkeypatch.setenv("CAESAR_K8S_RUNNER_SECRET", "other")
    monkeypatch.setenv("CAESAR_KUBECONFIG", "/tmp/kc")
    options = KubernetesOptions.from_env()
    assert (options.pending_grace, options.runner_secret, options.kubeconfig) == (42, "other", "/tmp/kc")
    assert KubernetesOptions().pending_grace == 300
    monkeypatch.setenv("CAESAR_K8S_PENDING_GRACE", "soon")
    with pytest.raises(ValueError, match="CAESAR_K8S_PENDING_GRACE"):
        KubernetesOptions.from_env()


# --- every variant validates --------------------------------------------------------------------------

def registry_specs() -> list[AppSpec]:
    """The real app specs (engineer C's registry), once there are any."""
    try:
        from caesar_faas.apps import registry
    except ImportError:
        return []
    if not any(registry.SPECS_DIR.glob("*.yaml")):
        return []
    return registry.list_apps()  # a broken spec fails here, loudly


def _variants() -> list[tuple[str, AppSpec, dict, KubernetesOptions]]:
    base = sample_spec()
    caesar_like = sample_spec(name="caesar", local_entry=None, image="ghcr.io/caesar-faas/caesar-runner:0.1.0",
                              command=["/opt/caesar-runner/bin/python", "-m", "caesar_faas.runner"],
                              resources={"requests": {"cpu": "2", "memory": "4Gi"},
                                         "limits": {"cpu": "4", "memory": "8Gi"}},
                              shm_size="1Gi", work_size="20Gi", default_timeout=7200)
    beam = {"bmaj": 12.0, "bmin": 8.5, "bpa": -30.0, "threshold": 5.0}
    out: list[tuple[str, AppSpec, dict, KubernetesOptions]] = [
        ("default", base, sample_job(), KubernetesOptions()),
        ("beam-override", base, sample_job(options=beam), KubernetesOptions()),
        ("no-resources", dataclasses.replace(base, resources={}), sample_job(), KubernetesOptions()),
        ("requests-only", dataclasses.replace(base, resources={"requests": {"cpu": "250m", "memory": "512Mi"}}),
         sample_job(), KubernetesOptions()),
        ("caesar-image", caesar_like, sample_job(app="caesar", timeout=7200), KubernetesOptions()),
        ("email-owner-odd-id", base, sample_job(owner="Bob.Smith+test@example.org", id="Job_ID/../x"),
         KubernetesOptions()),
        ("dollar-options", base, sample_job(options={"label": "$(CAESAR_STORAGE_URL)"}), KubernetesOptions()),
        ("fractional-timeout", base, sample_job(timeout=0.2), KubernetesOptions()),
        ("sa-pull-secret", base, sample_job(),
         KubernetesOptions(service_account="caesar-runner", image_pull_secret="regcred", backoff_limit=0)),
    ]
    for spec in registry_specs():
        defaults = {name: opt.default for name, opt in spec.options.items() if opt.default is not None}
        out.append((f"registry-{spec.name}", spec, sample_job(app=spec.name, timeout=spec.default_timeout),
                    KubernetesOptions()))
        out.append((f"registry-{spec.name}-options", spec,
                    sample_job(app=spec.name, options={**defaults, **beam}), KubernetesOptions()))
    return out


VARIANTS = _variants()

# S3-style presigned URLs of realistic length (the odd job id above is no valid storage key, so
# the variants do not presign their own).
_SIG = ("?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20250101T000000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "0" * 64)
SAMPLE_TRANSFER = {
    "input_url": "http://minio.caesar.svc.cluster.local:9000/caesar/files/alice/x" + _SIG,
    "product_urls": {name: f"http://minio.caesar.svc.cluster.local:9000/caesar/jobs/alice/j/{name}{_SIG}"
                     for name in PRODUCT_NAMES},
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("label", "spec", "job", "options"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_variant_validates_strictly(k8s_settings, version, label, spec, job, options):
    if not spec.image:
        pytest.skip(f"{spec.name} has no image: the backend refuses it (tested above)")
    m = build_job(job, spec, k8s_settings, options, NS, transfer=SAMPLE_TRANSFER)
    assert kubernetes_validate.validate(m, version, strict=True) == version
    pod = m["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    for section in container(m).get("resources", {}).values():
        for quantity in section.values():
            parse_quantity(quantity)  # raises on what the API server would reject
    for volume in pod["volumes"]:
        parse_quantity(volume["emptyDir"]["sizeLimit"])
    assert len(m["metadata"]["name"]) <= 63 and DNS_LABEL.match(m["metadata"]["name"])


def test_strict_validation_catches_a_broken_manifest(manifest):
    """The check above can fail: an unknown field or a wrong type is reported."""
    broken = json.loads(json.dumps(manifest))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.28", strict=True)
    broken = json.loads(json.dumps(manifest))
    broken["spec"]["activeDeadlineSeconds"] = "600"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_project_images_run_from_the_configured_registry(k8s_settings):
    spec = sample_spec(image="caesar-faas/runner:0.1.0")
    m = build(sample_job(), spec, k8s_settings, KubernetesOptions(image_registry="registry.example.org/astro/"), NS)
    assert container(m)["image"] == "registry.example.org/astro/runner:0.1.0"
    assert container(build(sample_job(), spec, k8s_settings, KubernetesOptions(), NS))["image"] == \
        "ghcr.io/caesar-faas/runner:0.1.0"
    upstream = sample_spec(image="docker.io/someone/finder:1.0")
    m = build(sample_job(), upstream, k8s_settings, KubernetesOptions(image_registry="r.example.org"), NS)
    assert container(m)["image"] == "docker.io/someone/finder:1.0"
