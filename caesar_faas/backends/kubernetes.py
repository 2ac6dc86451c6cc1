"""The Kubernetes job backend: one batch/v1 Job per caesar job (ARCHITECTURE §6).

Selected with CAESAR_JOB_BACKEND=kubernetes; Jobs go to Settings.k8s_namespace (CAESAR_K8S_NAMESPACE).
The manifest is built in k8s_manifest.py, the state mapping lives in k8s_status.py; this module
only talks to the API server, through the official `kubernetes` client.

API configuration, first match wins:
  an `api_client` passed to the constructor (tests point it at tests/fixtures/k8s.py);
  CAESAR_KUBECONFIG (a kubeconfig file, e.g. an operator running the monitor outside the cluster);
  the in-cluster service account (a function pod);
  KUBECONFIG / ~/.kube/config.

Responses are read as raw JSON (`_preload_content=False`): the client's model classes reject
objects with fields newer than the client, and we need only a few fields anyway.

At launch the backend presigns the job's transfer URLs (jobs/transfer.py) with the service's own
storage (Settings.storage_url, opened on first launch only): the Job itself never gets storage
credentials.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from ..apps.spec import AppSpec
from ..config import Settings
from ..jobs.transfer import presigned_transfer, transfer_expiry
from ..storage.base import Storage
from ..store.base import Record
from .base import Backend, LaunchError, PollResult
from .k8s_manifest import CONTAINER, LABEL_JOB_ID, build_job, job_name, label_value
from .k8s_options import KubernetesOptions
from .k8s_status import classify, parse_time

log = logging.getLogger(__name__)

# What a call to an unreachable or misbehaving API server raises besides ApiException.
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError, ConfigException)


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient from `kubeconfig`, else in-cluster config, else KUBECONFIG / ~/.kube/config."""
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except ConfigException:
            config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of an API failure (never the request, which may hold env)."""
    if isinstance(exc, ApiException):
        reason = exc.reason or ""
        try:
            reason = json.loads(exc.body or "{}").get("message") or reason
        except (ValueError, AttributeError):
            pass
        return f"HTTP {exc.status}: {reason}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


class KubernetesBackend(Backend):
    name = "kubernetes"

    def __init__(self, settings: Settings, *, api_client: client.ApiClient | None = None,
                 options: KubernetesOptions | None = None,
                 get_app: Callable[[str], AppSpec] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings)
        self.options = options or KubernetesOptions.from_env()
        self.namespace = settings.k8s_namespace
        self._api_client = api_client
        self._get_app = get_app
        self._clock = clock
        self._storage: Storage | None = None

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def api_client(self) -> client.ApiClient:
        """Created on first use, so building the backend never needs a reachable cluster."""
        if self._api_client is None:
            self._api_client = load_api_client(self.options.kubeconfig)
        return self._api_client

    @property
    def storage(self) -> Storage:
        """The service's storage, opened on first use: only launch needs it (to presign), so
        polling, cancelling and building the backend work without it."""
        if self._storage is None:
            from ..storage import open_storage

            self._storage = open_storage(self.settings.storage_url, self.settings)
        return self._storage

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api_client)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call a client method, returning the answer's JSON body."""
        response = method(*args, _preload_content=False, _request_timeout=self.options.request_timeout, **kwargs)
        data = response.data
        return json.loads(data) if data else {}

    def app_spec(self, app: str) -> AppSpec | None:
        if self._get_app is not None:
            return self._get_app(app)
        from ..apps.registry import get_app

        return get_app(app)

    @staticmethod
    def job_name(job: Record) -> str:
        ref = job.get("backend_ref") or {}
        return ref.get("name") or job_name(job["id"])

    def _ref(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        return {"backend": self.name, "namespace": meta.get("namespace") or self.namespace,
                "name": meta.get("name"), "uid": meta.get("uid")}

    # --- the Backend contract -----------------------------------------------------------------

    def transfer(self, job: Record) -> dict[str, Any]:
        """The job's presigned transfer URLs, valid for its timeout plus a queueing margin.
        Raises LaunchError("system") when the storage cannot sign them (no credentials, ...)."""
        try:
            return presigned_transfer(self.storage, job, expires=transfer_expiry(job["timeout"]))
        except Exception as exc:  # noqa: BLE001 - any storage failure: try again later
            raise LaunchError(f"cannot presign the storage URLs of job {job.get('id')}: "
                              f"{type(exc).__name__}: {exc}"[:300], "system") from exc

    def manifest(self, job: Record, transfer: dict[str, Any] | None = None) -> dict[str, Any]:
        """The Job `launch` creates for `job`, with fresh transfer URLs unless `transfer` is
        given. Raises LaunchError("usage") for an unknown app or an app without a container
        image (checked first, so those need no storage), LaunchError("system") when presigning
        fails."""
        try:
            spec = self.app_spec(job["app"])
        except Exception as exc:  # noqa: BLE001 - registry errors differ; all mean "cannot run"
            raise LaunchError(f"unknown app {job.get('app')!r}: {exc}", "usage") from exc
        if spec is None:
            raise LaunchError(f"unknown app {job.get('app')!r}", "usage")
        if not spec.image:
            raise LaunchError(f"app {spec.name!r} has no container image: it cannot run on Kubernetes", "usage")
        if transfer is None:
            transfer = self.transfer(job)
        try:
            return build_job(job, spec, self.settings, self.options, self.namespace, transfer=transfer)
        except ValueError as exc:
            raise LaunchError(str(exc), "usage") from exc

    def launch(self, job: Record) -> dict[str, Any]:
        """Create the Job; returns {"backend", "namespace", "name", "uid"}.

        Idempotent: when the API answers 409 (the Job exists) the existing Job's reference is
        returned, after checking that it belongs to this job id (that Job keeps the URLs it was
        created with). Raises LaunchError("usage") when the API rejects the manifest as invalid
        (400/422: retrying cannot help) and LaunchError("system") on 403 (RBAC, ResourceQuota),
        5xx, an unreachable API server or a storage that cannot presign."""
        manifest = self.manifest(job)
        name = manifest["metadata"]["name"]
        for _attempt in range(2):
            try:
                created = self._call(self.batch.create_namespaced_job, self.namespace, manifest)
                log.info("created Job %s/%s", self.namespace, name)
                return self._ref(created)
            except ApiException as exc:
                if exc.status in (400, 422):
                    raise LaunchError(f"the Kubernetes API rejected Job {name}: {_describe(exc)}", "usage") from exc
                if exc.status != 409:
                    raise LaunchError(f"cannot create Job {name}: {_describe(exc)}", "system") from exc
            except TRANSPORT_ERRORS as exc:
                raise LaunchError(f"cannot reach the Kubernetes API: {_describe(exc)}", "system") from exc
            existing = self._existing(name)
            if existing is None:
                continue  # deleted between our create and read (its TTL ran out): create it again
            owner_id = ((existing.get("metadata") or {}).get("labels") or {}).get(LABEL_JOB_ID)
            if owner_id != label_value(job["id"]):
                raise LaunchError(f"Job {name} exists but belongs to job {owner_id!r}", "system")
            log.info("Job %s/%s already exists: launch is a no-op", self.namespace, name)
            return self._ref(existing)
        raise LaunchError(f"Job {name} keeps appearing and vanishing", "system")

    def _existing(self, name: str) -> dict[str, Any] | None:
        try:
            return self._call(self.batch.read_namespaced_job, name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise LaunchError(f"Job {name} exists but cannot be read: {_describe(exc)}", "system") from exc
        except TRANSPORT_ERRORS as exc:
            raise LaunchError(f"cannot reach the Kubernetes API: {_describe(exc)}", "system") from exc

    def cancel(self, job: Record) -> None:
        """Delete the Job with propagation_policy="Background": the API returns at once and the
        garbage collector removes the pod (the runner gets SIGTERM). A Job already gone (404)
        counts as done. Raises LaunchError("system") when the API refuses or is unreachable, so
        the caller retries later."""
        name = self.job_name(job)
        try:
            self._delete(name)
        except ApiException as exc:
            raise LaunchError(f"cannot delete Job {name}: {_describe(exc)}", "system") from exc
        except TRANSPORT_ERRORS as exc:
            raise LaunchError(f"cannot reach the Kubernetes API: {_describe(exc)}", "system") from exc

    def _delete(self, name: str) -> bool:
        """True when deleted, False when it was already gone; other API errors propagate."""
        try:
            self._call(self.batch.delete_namespaced_job, name, self.namespace, propagation_policy="Background")
            log.info("deleted Job %s/%s", self.namespace, name)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def poll(self, job: Record) -> PollResult:
        """What the cluster says about `job` (mapping rules in k8s_status.py).

        - The Job is not found (404): "GONE" (never launched here, deleted, or its TTL expired).
        - A pod stuck past the grace period: "FAILURE" (class system) and the Job is deleted.
        - The API answers 403, 5xx or anything unexpected, or cannot be reached: the job is left
          as it is. The result's state is "RUNNING" when job["state"] is RUNNING, else "PENDING",
          with details {"transient": True, "error": ...} and a message naming the failure; the
          caller must not change the job because of it and simply polls again later.
        """
        name = self.job_name(job)
        try:
            obj = self._call(self.batch.read_namespaced_job, name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return PollResult("GONE", message=f"Kubernetes Job {name} not found", details={"job": name})
            return self._unchanged(job, exc)
        except TRANSPORT_ERRORS as exc:
            return self._unchanged(job, exc)
        try:
            pods = self._call(self.core.list_namespaced_pod, self.namespace,
                              label_selector=f"job-name={name}").get("items") or []
        except (ApiException, *TRANSPORT_ERRORS) as exc:
            return self._unchanged(job, exc)
        verdict = classify(obj, pods, now=self._clock(), grace=self.options.pending_grace)
        result = verdict.result
        details = dict(result.details, job=name)
        status = obj.get("status") or {}
        if (start := parse_time(status.get("startTime"))) is not None:
            end = parse_time(status.get("completionTime")) or self._clock()
            details["elapsed"] = round(max(0.0, end - start), 3)
        if verdict.delete:
            try:
                self._delete(name)  # already gone counts as deleted
                details["deleted"] = True
            except (ApiException, *TRANSPORT_ERRORS) as exc:
                # activeDeadlineSeconds still ends the Job later; report the failure anyway.
                details["deleted"] = False
                log.warning("cannot delete stuck Job %s: %s", name, _describe(exc))
        return PollResult(result.state, exit_code=result.exit_code, error_class=result.error_class,
                          message=result.message, details=details)

    def _unchanged(self, job: Record, exc: BaseException) -> PollResult:
        state = "RUNNING" if job.get("state") == "RUNNING" else "PENDING"
        why = _describe(exc)
        log.warning("Kubernetes API problem while polling job %s: %s", job.get("id"), why)
        return PollResult(state, message=f"Kubernetes API unavailable ({why}); state unchanged",
                          details={"transient": True, "error": why})

    # --- for operators and the status endpoint ---------------------------------------------------

    def logs(self, job: Record, tail_lines: int = 200) -> str:
        """The last lines the runner container printed in the Job's newest pod ("" when none)."""
        name = self.job_name(job)
        try:
            pods = self._call(self.core.list_namespaced_pod, self.namespace,
                              label_selector=f"job-name={name}").get("items") or []
            if not pods:
                return ""
            pods.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
            pod = pods[-1]["metadata"]["name"]
            response = self.core.read_namespaced_pod_log(
                pod, self.namespace, container=CONTAINER, tail_lines=tail_lines,
                _preload_content=False, _request_timeout=self.options.request_timeout)
            # _preload_content=False gives the raw urllib3 response, whatever the stubs say
            return cast(Any, response).data.decode("utf-8", "replace")
        except (ApiException, *TRANSPORT_ERRORS) as exc:
            log.warning("cannot read logs of Job %s: %s", name, _describe(exc))
            return ""
