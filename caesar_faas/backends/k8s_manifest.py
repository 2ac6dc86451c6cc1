"""The batch/v1 Job that runs one caesar job on Kubernetes (ARCHITECTURE §6), as a plain dict.

Pure functions, no API calls: the backend posts what `build_job` returns, and the tests validate
every variant with kubernetes-validate --strict. Design choices, and why:

- The Job is named `caesar-<job id>`: a deterministic name makes launch idempotent (a second
  create answers 409) and lets anyone find the Job of a job without a lookup.
- The pod runs under the restricted Pod Security profile with a read-only root filesystem; the
  runner writes only to emptyDir volumes: /work (CAESAR_WORKDIR, HOME, TMPDIR under it), /tmp,
  and a memory-backed /dev/shm sized by the app spec (multiprocessing and some finders need it).
- The runner gets no storage URL and no storage credentials. CAESAR_JOB carries presigned URLs
  (jobs/transfer.py): a GET of the job's input and a PUT per product under the job's output
  prefix, valid for the job's lifetime. They are bearer credentials for exactly this job's data,
  readable by whoever can read Jobs in the jobs namespace (operators only, per infra/k8s/rbac.yaml),
  instead of cluster-wide S3 keys in every job pod. The NATS URL alone comes by reference from a
  Secret (`secretKeyRef`).
- Kubernetes expands `$(NAME)` inside env values and command arguments. CAESAR_JOB carries user
  option strings, so every `$` is doubled: an option `$(CAESAR_NATS_URL)` stays that text instead
  of turning into the secret's value inside the job document.
- podFailurePolicy: the runner's own non-zero exit fails the Job at once (retrying a finder that
  rejected its input only wastes the cluster); a pod lost to a node drain or preemption
  (DisruptionTarget) is retried without counting against backoffLimit.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from ..apps.spec import AppSpec
from ..config import Settings
from ..jobs.transfer import FORBIDDEN_ENV
from ..runner.contract import runner_env
from ..store.base import Record
from .k8s_options import KubernetesOptions

CONTAINER = "runner"
WORKDIR = "/work"
RUN_AS = 10001  # the uid/gid of the runner images (infra/images); any non-root id works
DEFAULT_COMMAND = ["python", "-m", "caesar_faas.runner"]
TMP_SIZE = "1Gi"

# The runner reads this from the Secret (by reference); runner_env's inline value is dropped.
SECRET_ENV = ("CAESAR_NATS_URL", "CAESAR_NATS_TOKEN")

NAME_PREFIX = "caesar-"
LABEL_JOB_ID = "caesar.io/job-id"
LABEL_OWNER = "caesar.io/owner"
LABEL_APP = "caesar.io/app"
ANNOTATION_OWNER = "caesar.io/owner"
ANNOTATION_APP_VERSION = "caesar.io/app-version"
MANAGED_BY = "caesar-faas"
PROJECT_IMAGES = "caesar-faas/"  # app specs name the project's own images like this

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _digest(raw: str, n: int = 10) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()[:n]


def job_name(job_id: str) -> str:
    """`caesar-<job id>`, a DNS-1123 label of at most 63 characters (the Job controller copies the
    name into the pod's `job-name` label, so the label limit applies, not the 253 of a name).

    Our ids are uuid4 strings and pass unchanged; anything else is lowered, cleaned and, when it
    had to change or be cut, suffixed with a hash of the original so two ids never collide."""
    name = NAME_PREFIX + job_id
    if len(name) <= 63 and _DNS_LABEL.match(name):
        return name
    cleaned = re.sub(r"[^a-z0-9-]+", "-", job_id.lower())[:63 - len(NAME_PREFIX) - 11].strip("-")
    return f"{NAME_PREFIX}{cleaned}-{_digest(job_id)}" if cleaned else NAME_PREFIX + _digest(job_id)


def label_value(raw: str) -> str:
    """A label-value-safe form of `raw` (max 63 chars of [A-Za-z0-9_.-], alphanumeric at both
    ends). Valid values pass unchanged; others (e-mail addresses, long subjects of an OIDC
    provider) are cleaned, cut and suffixed with a hash of the raw value to stay distinct."""
    if len(raw) <= 63 and _LABEL_VALUE.match(raw):
        return raw
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", raw)
    cleaned = re.sub(r"^[^A-Za-z0-9]+", "", cleaned)[:52]
    cleaned = re.sub(r"[^A-Za-z0-9]+$", "", cleaned)
    return f"{cleaned}-{_digest(raw)}" if cleaned else _digest(raw)


def job_labels(job: Record) -> dict[str, str]:
    """Labels of the Job and its pod: select by job id, owner or app (`kubectl -l ...`)."""
    return {
        "app.kubernetes.io/name": "caesar-runner",
        "app.kubernetes.io/instance": job_name(job["id"]),
        "app.kubernetes.io/component": "job",
        "app.kubernetes.io/part-of": "caesar-faas",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_JOB_ID: label_value(job["id"]),
        LABEL_OWNER: label_value(job["owner"]),
        LABEL_APP: label_value(job["app"]),
    }


def resolve_image(image: str, registry: str) -> str:
    """`caesar-faas/runner:0.1.0` -> `<registry>/runner:0.1.0`; any other image is used as is."""
    if image.startswith(PROJECT_IMAGES):
        return f"{registry.rstrip('/')}/{image[len(PROJECT_IMAGES):]}"
    return image


def escape_expansion(value: str) -> str:
    """Make Kubernetes' `$(VAR)` expansion a no-op on `value` (`$$` is its escape for `$`)."""
    return value.replace("$", "$$")


def _env(job: Record, settings: Settings, secret: str, transfer: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": name}}} for name in SECRET_ENV
    ]
    for name, value in runner_env(job, settings, WORKDIR, transfer=transfer).items():
        if name in FORBIDDEN_ENV:
            raise ValueError(f"{name} must not reach a Kubernetes Job")  # a contract change gone wrong
        if name not in SECRET_ENV:
            env.append({"name": name, "value": escape_expansion(value)})
    return env


def _resources(spec: AppSpec) -> dict[str, dict[str, str]]:
    """Only `requests` and `limits`, with quantities as strings (an int would fail validation)."""
    out: dict[str, dict[str, str]] = {}
    for section in ("requests", "limits"):
        values = (spec.resources or {}).get(section) or {}
        if values:
            out[section] = {str(k): str(v) for k, v in values.items()}
    return out


def _timeout(job: Record) -> int:
    """activeDeadlineSeconds: the job timeout, a positive whole number of seconds."""
    return max(1, int(math.ceil(float(job["timeout"]))))


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_failure_policy() -> dict[str, Any]:
    """Ignore disruptions, fail at once on the runner's non-zero exit.

    The FailJob rule carries an empty `onPodConditions`: the 1.26-1.28 API schema marks that field
    required (the server accepts an empty list next to onExitCodes; it rejects only a non-empty
    one), so the rule validates on 1.28 and on newer servers alike."""
    return {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "NotIn", "values": [0]},
         "onPodConditions": []},
    ]}


def build_job(job: Record, spec: AppSpec, settings: Settings, options: KubernetesOptions,
              namespace: str, *, transfer: dict[str, Any]) -> dict[str, Any]:
    """The Job manifest for `job` (a store record) running app `spec`; `transfer` is the job's
    presigned URLs (jobs/transfer.presigned_transfer), the runner's only way to storage.

    Raises ValueError when the app has no container image (it cannot run on a cluster)."""
    if not spec.image:
        raise ValueError(f"app {spec.name!r} has no container image: it cannot run on Kubernetes")
    name = job_name(job["id"])
    labels = job_labels(job)
    annotations = {ANNOTATION_OWNER: job["owner"], ANNOTATION_APP_VERSION: str(spec.version)}
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": resolve_image(spec.image, options.image_registry),
        "imagePullPolicy": options.image_pull_policy,
        "command": [escape_expansion(arg) for arg in (spec.command or DEFAULT_COMMAND)],
        "workingDir": WORKDIR,
        "env": _env(job, settings, options.runner_secret, transfer),
        "securityContext": container_security_context(),
        # On a crash the last log lines become the termination message that poll() reports.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "work", "mountPath": WORKDIR},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [
            {"name": "work", "emptyDir": {"sizeLimit": spec.work_size}},
            {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.shm_size}},
        ],
    }
    if options.service_account:
        pod_spec["serviceAccountName"] = options.service_account
    if options.image_pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": options.image_pull_secret}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": options.backoff_limit,
            "activeDeadlineSeconds": _timeout(job),
            "ttlSecondsAfterFinished": options.ttl_after_finished,
            "podFailurePolicy": pod_failure_policy(),
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
                "spec": pod_spec,
            },
        },
    }
