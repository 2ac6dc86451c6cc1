"""Knobs of the Kubernetes backend that only an operator changes, read from the environment.

They live here rather than in config.Settings because no other part of the service reads them.

CAESAR_K8S_RUNNER_SECRET      Secret in the jobs namespace that holds the runner's CAESAR_NATS_URL
                              (default caesar-runner); storage is reached through presigned URLs
CAESAR_K8S_PENDING_GRACE      seconds a pod may sit in ImagePullBackOff / ErrImagePull /
                              Unschedulable / CreateContainerConfigError before the job fails (300)
CAESAR_K8S_TTL_AFTER_FINISHED seconds a finished Job (and its pod and logs) stays for inspection (86400)
CAESAR_K8S_BACKOFF_LIMIT      pod retries after infrastructure failures (2)
CAESAR_K8S_SERVICE_ACCOUNT    service account of job pods (default: the namespace's `default`)
CAESAR_K8S_IMAGE_PULL_SECRET  image pull secret for private registries (none)
CAESAR_K8S_IMAGE_PULL_POLICY  IfNotPresent (images are pinned by tag, so re-pulling buys nothing)
CAESAR_K8S_REQUEST_TIMEOUT    seconds one API call may take before it counts as a failure (30)
CAESAR_K8S_IMAGE_REGISTRY     where the project's own images live: an app image named
                              `caesar-faas/<name>:<tag>` runs as `<registry>/<name>:<tag>`
                              (default ghcr.io/caesar-faas, like stack.yml's ${REGISTRY} default)
CAESAR_KUBECONFIG             kubeconfig file to use instead of in-cluster config (else KUBECONFIG)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import env_int as _int


def _str(env: str, default: str | None) -> str | None:
    return os.environ.get(env, "").strip() or default


@dataclass(frozen=True)
class KubernetesOptions:
    runner_secret: str = "caesar-runner"
    pending_grace: int = 300
    ttl_after_finished: int = 86400
    backoff_limit: int = 2
    service_account: str | None = None
    image_pull_secret: str | None = None
    image_pull_policy: str = "IfNotPresent"
    request_timeout: int = 30
    kubeconfig: str | None = None
    image_registry: str = "ghcr.io/caesar-faas"

    @classmethod
    def from_env(cls) -> KubernetesOptions:
        return cls(
            runner_secret=_str("CAESAR_K8S_RUNNER_SECRET", "caesar-runner") or "caesar-runner",
            pending_grace=_int("CAESAR_K8S_PENDING_GRACE", 300),
            ttl_after_finished=_int("CAESAR_K8S_TTL_AFTER_FINISHED", 86400),
            backoff_limit=_int("CAESAR_K8S_BACKOFF_LIMIT", 2),
            service_account=_str("CAESAR_K8S_SERVICE_ACCOUNT", None),
            image_pull_secret=_str("CAESAR_K8S_IMAGE_PULL_SECRET", None),
            image_pull_policy=_str("CAESAR_K8S_IMAGE_PULL_POLICY", "IfNotPresent") or "IfNotPresent",
            request_timeout=_int("CAESAR_K8S_REQUEST_TIMEOUT", 30),
            kubeconfig=_str("CAESAR_KUBECONFIG", None),
            image_registry=_str("CAESAR_K8S_IMAGE_REGISTRY", "ghcr.io/caesar-faas") or "ghcr.io/caesar-faas",
        )
