"""KubernetesBackend launch / cancel / poll through the real `kubernetes` client over real HTTP,
against the fake API server of tests/fixtures/k8s.py (every state mapping and error path)."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest
import requests

from caesar_faas.backends import open_backend
from caesar_faas.backends.base import LaunchError
from caesar_faas.backends.k8s_options import KubernetesOptions
from caesar_faas.backends.kubernetes import KubernetesBackend
from caesar_faas.runner.contract import PRODUCT_NAMES, output_prefix
from caesar_faas.storage import clear_cache
from tests.fixtures.k8s import FakeKubernetes, sample_job, sample_spec
from tests.helpers import free_port

JOBS = r"/apis/batch/v1/namespaces/caesar-jobs/jobs"


def job_env(manifest: dict) -> dict:
    """CAESAR_JOB of a Job manifest, as the runner reads it (Kubernetes turns `$$` into `$`)."""
    env = {e["name"]: e for e in manifest["spec"]["template"]["spec"]["containers"][0]["env"]}
    return json.loads(env["CAESAR_JOB"]["value"].replace("$$", "$"))


def launched(backend: KubernetesBackend, **overrides) -> tuple[dict, str]:
    job = sample_job(**overrides)
    ref = backend.launch(job)
    job["backend_ref"] = ref
    return job, ref["name"]


# --- launch ---------------------------------------------------------------------------------------

def test_launch_creates_the_job(k8s_backend, fake_k8s):
    job = sample_job()
    ref = k8s_backend.launch(job)
    assert ref["backend"] == "kubernetes" and ref["namespace"] == "caesar-jobs"
    assert ref["name"] == f"caesar-{job['id']}"
    stored = fake_k8s.job(ref["name"])
    assert stored is not None and ref["uid"] == stored["metadata"]["uid"]
    posted = fake_k8s.requests_to("POST", JOBS + "$")
    assert len(posted) == 1
    # The manifest, with the transfer URLs presigned at launch (a later call signs fresh ones).
    transfer = job_env(posted[0].body)["transfer"]
    assert set(transfer["product_urls"]) == set(PRODUCT_NAMES)
    assert posted[0].body == k8s_backend.manifest(job, transfer)
    assert posted[0].headers.get("Authorization") == "Bearer fake-token"


def test_launch_on_s3_gives_the_job_working_urls_and_no_credentials(fake_k8s, k8s_settings, moto_endpoint,
                                                                    aws_env, monkeypatch):
    """With the cluster's kind of storage (S3, here the moto server): the Job carries presigned
    URLs that read the job's input and write its products under the job's prefix, and neither
    the storage URL nor the service's S3 keys."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSERVICEONLY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "service-secret-key-not-for-jobs")
    bucket = "k8s-transfer"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="files/alice/in", Body=b"SIMPLE  = T")
    settings = dataclasses.replace(k8s_settings, storage_url=f"s3://{bucket}?endpoint_url={moto_endpoint}")
    clear_cache()
    backend = KubernetesBackend(settings, api_client=fake_k8s.api_client(), options=KubernetesOptions(),
                                get_app=lambda name: sample_spec())
    job = sample_job(input={"file_id": "f1", "key": "files/alice/in", "filename": "in.fits"})
    ref = backend.launch(job)

    manifest = fake_k8s.job(ref["name"])
    text = json.dumps(manifest)
    assert "service-secret-key-not-for-jobs" not in text and settings.storage_url not in text
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in container
    assert {e["name"] for e in container["env"]} & {"CAESAR_STORAGE_URL", "AWS_ACCESS_KEY_ID",
                                                     "AWS_SECRET_ACCESS_KEY"} == set()
    transfer = job_env(manifest)["transfer"]
    assert transfer["input_url"].startswith(f"{moto_endpoint}/{bucket}/files/alice/in?")
    got = requests.get(transfer["input_url"], timeout=10)
    assert got.status_code == 200 and got.content == b"SIMPLE  = T"
    prefix = output_prefix(job["owner"], job["id"])
    for name in ("catalog.csv", "manifest.json"):
        put = requests.put(transfer["product_urls"][name], data=name.encode(), timeout=10)
        assert put.status_code == 200, put.text
    stored = {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
              for o in s3.list_objects_v2(Bucket=bucket, Prefix="jobs/")["Contents"]}
    assert stored == {prefix + "catalog.csv": b"catalog.csv", prefix + "manifest.json": b"manifest.json"}
    clear_cache()


def test_cancel_and_poll_never_open_the_storage(fake_k8s, k8s_settings):
    settings = dataclasses.replace(k8s_settings, storage_url="s3://nowhere?endpoint_url=http://127.0.0.1:1")
    backend = KubernetesBackend(settings, api_client=fake_k8s.api_client(), options=KubernetesOptions(),
                                get_app=lambda name: sample_spec())
    job = sample_job()
    assert backend.poll(job).state == "GONE"
    backend.cancel(job)
    assert backend._storage is None


def test_launch_without_presigning_storage_is_a_system_error_and_sends_nothing(fake_k8s, k8s_settings):
    settings = dataclasses.replace(k8s_settings, storage_url="ftp://not-a-storage")
    backend = KubernetesBackend(settings, api_client=fake_k8s.api_client(), options=KubernetesOptions(),
                                get_app=lambda name: sample_spec())
    with pytest.raises(LaunchError) as info:
        backend.launch(sample_job())
    assert info.value.error_class == "system"
    assert fake_k8s.requests == []


def test_launch_is_idempotent_on_409(k8s_backend, fake_k8s):
    job = sample_job()
    first = k8s_backend.launch(job)
    second = k8s_backend.launch(job)
    assert first == second
    assert fake_k8s.jobs() == [first["name"]]
    assert len(fake_k8s.requests_to("POST", JOBS + "$")) == 2  # the second create answered 409
    assert len(fake_k8s.requests_to("GET", JOBS + "/caesar-")) == 1  # ...and the existing Job was read


def test_409_for_a_job_that_then_vanished_creates_it_again(k8s_backend, fake_k8s):
    fake_k8s.fail("POST", JOBS + "$", 409)
    ref = k8s_backend.launch(sample_job())
    assert fake_k8s.job(ref["name"]) is not None
    assert len(fake_k8s.requests_to("POST", JOBS + "$")) == 2


def test_409_from_a_job_of_another_id_is_refused(k8s_backend, fake_k8s):
    job = sample_job()
    foreign = k8s_backend.manifest(job)
    foreign["metadata"]["labels"]["caesar.io/job-id"] = "someone-else"
    fake_k8s.put_job(foreign)
    with pytest.raises(LaunchError) as info:
        k8s_backend.launch(job)
    assert info.value.error_class == "system"


@pytest.mark.parametrize(("status", "error_class"), [(403, "system"), (500, "system"), (503, "system"),
                                                     (422, "usage"), (400, "usage")])
def test_launch_api_errors(k8s_backend, fake_k8s, status, error_class):
    fake_k8s.fail("POST", JOBS + "$", status, message="exceeded quota: caesar-jobs")
    with pytest.raises(LaunchError) as info:
        k8s_backend.launch(sample_job())
    assert info.value.error_class == error_class
    assert str(status) in str(info.value)
    assert fake_k8s.jobs() == []


def test_launch_409_then_403_on_read_is_a_system_error(k8s_backend, fake_k8s):
    job = sample_job()
    k8s_backend.launch(job)
    fake_k8s.fail("GET", JOBS + "/caesar-", 403)
    with pytest.raises(LaunchError) as info:
        k8s_backend.launch(job)
    assert info.value.error_class == "system"


def test_launch_with_unreachable_api_is_a_system_error(k8s_settings):
    backend = KubernetesBackend(k8s_settings, options=KubernetesOptions(request_timeout=2),
                                get_app=lambda name: sample_spec())
    with FakeKubernetes() as fake:
        client = fake.api_client()
    client.configuration.host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    backend._api_client = client
    with pytest.raises(LaunchError) as info:
        backend.launch(sample_job())
    assert info.value.error_class == "system"


def test_launch_of_unknown_app_or_app_without_image_sends_nothing(k8s_settings, fake_k8s):
    specs = {"noimage": sample_spec(name="noimage", image="")}
    backend = KubernetesBackend(k8s_settings, api_client=fake_k8s.api_client(), options=KubernetesOptions(),
                                get_app=specs.get)
    for app in ("noimage", "missing"):
        with pytest.raises(LaunchError) as info:
            backend.launch(sample_job(app=app))
        assert info.value.error_class == "usage"
    assert fake_k8s.requests == []


# --- cancel ---------------------------------------------------------------------------------------

def test_cancel_deletes_job_and_pods_in_background(k8s_backend, fake_k8s):
    job, name = launched(k8s_backend)
    fake_k8s.add_pod(name, phase="Running", running=True)
    k8s_backend.cancel(job)
    deletes = fake_k8s.requests_to("DELETE", JOBS + "/" + name)
    assert len(deletes) == 1 and deletes[0].query.get("propagationPolicy") == "Background"
    assert fake_k8s.job(name) is None
    assert fake_k8s.pods_of(name) == []


def test_fake_orphans_pods_without_background_policy(k8s_backend, fake_k8s):
    """The check above can fail: a delete without propagation policy leaves the pod running."""
    _, name = launched(k8s_backend)
    fake_k8s.add_pod(name, phase="Running", running=True)
    k8s_backend.batch.delete_namespaced_job(name, "caesar-jobs")
    assert fake_k8s.job(name) is None and len(fake_k8s.pods_of(name)) == 1


def test_cancel_of_a_gone_job_is_done(k8s_backend, fake_k8s):
    job, _ = launched(k8s_backend)
    k8s_backend.cancel(job)
    k8s_backend.cancel(job)  # 404: already done
    k8s_backend.cancel(sample_job())  # never launched
    assert fake_k8s.jobs() == []


@pytest.mark.parametrize("status", [403, 500])
def test_cancel_api_errors_raise_for_a_retry(k8s_backend, fake_k8s, status):
    job, name = launched(k8s_backend)
    fake_k8s.fail("DELETE", JOBS + "/", status)
    with pytest.raises(LaunchError) as info:
        k8s_backend.cancel(job)
    assert info.value.error_class == "system"
    assert fake_k8s.job(name) is not None
    k8s_backend.cancel(job)
    assert fake_k8s.job(name) is None


# --- poll -----------------------------------------------------------------------------------------

def test_poll_without_job_is_gone(k8s_backend):
    assert k8s_backend.poll(sample_job()).state == "GONE"


def test_poll_before_and_after_the_pod_starts(k8s_backend, fake_k8s):
    job, name = launched(k8s_backend)
    assert k8s_backend.poll(job).state == "PENDING"  # no pod yet
    pod = fake_k8s.add_pod(name)  # ContainerCreating
    assert k8s_backend.poll(job).state == "PENDING"
    fake_k8s.reset()
    job, name = launched(k8s_backend)
    fake_k8s.add_pod(name, phase="Running", running=True, name=pod)
    result = k8s_backend.poll(job)
    assert result.state == "RUNNING" and result.exit_code is None
    pods_query = fake_k8s.requests_to("GET", r"/api/v1/namespaces/caesar-jobs/pods$")[-1].query
    assert pods_query == {"labelSelector": f"job-name={name}"}


def test_poll_complete_is_success(k8s_backend, fake_k8s):
    job, name = launched(k8s_backend)
    fake_k8s.complete(name)
    result = k8s_backend.poll(job)
    assert (result.state, result.exit_code, result.error_class) == ("SUCCESS", 0, None)
    assert result.details["elapsed"] >= 0


@pytest.mark.parametrize(("code", "error_class"), [(1, "usage"), (2, "usage"), (70, "system"), (139, "system")])
def test_poll_failed_reports_the_runner_exit_code(k8s_backend, fake_k8s, code, error_class):
    job, name = launched(k8s_backend)
    fake_k8s.fail_job(name, code, message="sep: no sources above threshold\n")
    result = k8s_backend.poll(job)
    assert (result.state, result.exit_code, result.error_class) == ("FAILURE", code, error_class)
    assert "no sources above threshold" in result.message


def test_poll_oom_killed_is_a_system_failure(k8s_backend, fake_k8s):
    job, name = launched(k8s_backend)
    fake_k8s.fail_job(name, 137, terminated_reason="OOMKilled")
    result = k8s_backend.poll(job)
    assert (result.state, result.exit_code, result.error_class) == ("FAILURE", 137, "system")
    assert "memory" in result.message


def test_poll_failed_without_any_pod_left(k8s_backend, fake_k8s):
    job, name = launched(k8s_backend)
    fake_k8s.add_condition(name, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    result = k8s_backend.poll(job)
    assert (result.state, result.exit_code, result.error_class) == ("FAILURE", None, "system")
    assert "backoff limit" in result.message


def test_poll_deadline_exceeded_is_timed_out(k8s_backend, fake_k8s):
    job, name = launched(k8s_backend)
    fake_k8s.add_pod(name, phase="Running", running=True)
    fake_k8s.deadline_exceeded(name)
    result = k8s_backend.poll(job)
    assert (result.state, result.error_class) == ("TIMED-OUT", "timeout")


def test_poll_after_a_disruption_retry_is_still_running(k8s_backend, fake_k8s):
    job, name = launched(k8s_backend)
    fake_k8s.add_pod(name, phase="Failed", exit_code=143, age=30)  # evicted, no Failed condition
    fake_k8s.set_job_status(name, failed=1, active=1)
    fake_k8s.add_pod(name, phase="Pending")
    assert k8s_backend.poll(job).state in ("PENDING", "RUNNING")
    assert fake_k8s.job(name) is not None


@pytest.mark.parametrize(("kind", "pod_args"), [
    ("ImagePullBackOff", {"waiting": "ImagePullBackOff", "waiting_message": "Back-off pulling image"}),
    ("ErrImagePull", {"waiting": "ErrImagePull", "waiting_message": "manifest unknown"}),
    ("CreateContainerConfigError", {"waiting": "CreateContainerConfigError",
                                    "waiting_message": 'secret "caesar-runner" not found'}),
    ("Unschedulable", {"unschedulable": "0/3 nodes are available: 3 Insufficient memory."}),
])
def test_stuck_pod_fails_after_the_grace_period(k8s_settings, fake_k8s, kind, pod_args):
    backend = KubernetesBackend(k8s_settings, api_client=fake_k8s.api_client(),
                                options=KubernetesOptions(pending_grace=120), get_app=lambda n: sample_spec())
    job, name = launched(backend)
    fake_k8s.add_pod(name, age=60, **pod_args)
    young = backend.poll(job)
    assert young.state == "PENDING" and kind in young.message
    assert fake_k8s.job(name) is not None

    fake_k8s.reset()
    job, name = launched(backend)
    fake_k8s.add_pod(name, age=121, **pod_args)
    old = backend.poll(job)
    assert (old.state, old.error_class) == ("FAILURE", "system")
    assert kind in old.message and old.details["deleted"] is True
    assert fake_k8s.job(name) is None and fake_k8s.pods_of(name) == []
    delete = fake_k8s.requests_to("DELETE", JOBS + "/" + name)[0]
    assert delete.query["propagationPolicy"] == "Background"


def test_stuck_pod_whose_delete_fails_is_still_a_failure(k8s_backend, fake_k8s):
    job, name = launched(k8s_backend)
    fake_k8s.add_pod(name, waiting="ImagePullBackOff", age=10_000)
    fake_k8s.fail("DELETE", JOBS + "/", 500)
    result = k8s_backend.poll(job)
    assert (result.state, result.details["deleted"]) == ("FAILURE", False)


@pytest.mark.parametrize("status", [403, 500])
@pytest.mark.parametrize("where", ["job", "pods"])
def test_poll_api_errors_leave_the_job_unchanged(k8s_backend, fake_k8s, status, where):
    job, name = launched(k8s_backend)
    fake_k8s.complete(name)
    path = JOBS + "/" + name if where == "job" else r"/api/v1/namespaces/caesar-jobs/pods$"
    fake_k8s.fail("GET", path, status, times=None)
    for state, expected in (("STARTED", "PENDING"), ("PENDING", "PENDING"), ("RUNNING", "RUNNING")):
        result = k8s_backend.poll(dict(job, state=state))
        assert result.state == expected
        assert result.details["transient"] is True and str(status) in result.message
    fake_k8s.clear_faults()
    assert k8s_backend.poll(job).state == "SUCCESS"


def test_poll_with_unreachable_api_leaves_the_job_unchanged(k8s_settings):
    with FakeKubernetes() as fake:
        client = fake.api_client()
    client.configuration.host = f"http://127.0.0.1:{free_port()}"
    backend = KubernetesBackend(k8s_settings, api_client=client, options=KubernetesOptions(request_timeout=2))
    result = backend.poll(sample_job(state="RUNNING"))
    assert result.state == "RUNNING" and result.details["transient"] is True


# --- logs, configuration ------------------------------------------------------------------------------

def test_logs_tail_of_the_newest_pod(k8s_backend, fake_k8s):
    job, name = launched(k8s_backend)
    fake_k8s.add_pod(name, phase="Failed", exit_code=1, age=100, log="old pod\n")
    fake_k8s.add_pod(name, phase="Running", running=True, log="".join(f"line {i}\n" for i in range(50)))
    assert k8s_backend.logs(job, tail_lines=2) == "line 48\nline 49\n"
    assert fake_k8s.requests_to("GET", "/log$")[-1].query["container"] == "runner"
    assert k8s_backend.logs(sample_job()) == ""


def test_open_backend_uses_caesar_kubeconfig(k8s_settings, fake_k8s, tmp_path, monkeypatch):
    """The path a dispatcher or monitor takes: CAESAR_JOB_BACKEND=kubernetes + a kubeconfig."""
    monkeypatch.setenv("CAESAR_KUBECONFIG", str(fake_k8s.kubeconfig(tmp_path / "kubeconfig")))
    backend = open_backend(k8s_settings)
    assert isinstance(backend, KubernetesBackend)
    specs = {"sep": sample_spec()}
    backend._get_app = specs.get
    job = sample_job()
    ref = backend.launch(job)
    assert fake_k8s.job(ref["name"]) is not None
    assert backend.poll(dict(job, backend_ref=ref)).state == "PENDING"
    assert fake_k8s.requests[0].headers.get("Authorization") == "Bearer fake-token"


def test_namespace_comes_from_settings(k8s_settings, fake_k8s):
    settings = dataclasses.replace(k8s_settings, k8s_namespace="other-jobs")
    backend = KubernetesBackend(settings, api_client=fake_k8s.api_client(), options=KubernetesOptions(),
                                get_app=lambda n: sample_spec())
    ref = backend.launch(sample_job())
    assert ref["namespace"] == "other-jobs"
    assert fake_k8s.job(ref["name"], namespace="other-jobs") is not None
    assert fake_k8s.jobs() == []
