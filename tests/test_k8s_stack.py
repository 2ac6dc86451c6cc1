"""The dispatcher and the monitor of the running local stack on CAESAR_JOB_BACKEND=kubernetes,
against the HTTP-level fake of the Kubernetes API server (the real client, real HTTP)."""

from __future__ import annotations

import pytest

from tests.fixtures.k8s import kubernetes_stack
from tests.helpers import wait_for
from tests.samples import fits_bytes


@pytest.fixture(scope="module")
def fake(module_fake_k8s):
    return module_fake_k8s


@pytest.fixture(scope="module")
def k8s_stack(tmp_path_factory, fake):
    with kubernetes_stack(fake, tmp_path_factory.mktemp("k8s-stack")) as stack:
        yield stack


@pytest.fixture(scope="module")
def file_id(k8s_stack):
    client = k8s_stack.client("kube")
    resp = client.post(k8s_stack.url + "/function/upload", files={"file": ("k.fits", fits_bytes())})
    assert resp.status_code == 201
    return resp.json()["uuid"]


def submit(stack, file_id, app="sep", **extra):
    resp = stack.client("kube").post(stack.url + "/function/submit",
                                     json={"app": app, "job_inputs": {}, "data_inputs": file_id, **extra})
    assert resp.status_code == 202, resp.text
    return resp.json()["job_id"]


def status(stack, job_id):
    return stack.client("kube").get(f"{stack.url}/function/status/{job_id}").json()


def launched(fake, stack, job_id):
    name = f"caesar-{job_id}"
    wait_for(lambda: fake.job(name) is not None, timeout=60, message="the dispatcher to create the Job")
    wait_for(lambda: status(stack, job_id)["state"] == "STARTED", timeout=60, message="STARTED")
    return name


def ends(stack, job_id, timeout=20):
    return wait_for(lambda: (v := status(stack, job_id))["state"] in ("SUCCESS", "FAILURE", "TIMED-OUT", "ABORTED")
                    and v, timeout=timeout, message="the monitor to end the job")


def test_job_is_created_with_labels_and_security(fake, k8s_stack, file_id):
    job_id = submit(k8s_stack, file_id)
    job = fake.job(launched(fake, k8s_stack, job_id))
    labels = job["metadata"]["labels"]
    assert labels["caesar.io/job-id"] == job_id and labels["caesar.io/app"] == "sep"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["spec"]["activeDeadlineSeconds"] == status(k8s_stack, job_id)["timeout"]


def test_complete_job_ends_success_through_the_monitor(fake, k8s_stack, file_id):
    job_id = submit(k8s_stack, file_id)
    fake.complete(launched(fake, k8s_stack, job_id))
    view = ends(k8s_stack, job_id)
    assert view["state"] == "SUCCESS" and view["exit_status"] == 0


def test_failed_job_ends_failure_with_the_exit_code(fake, k8s_stack, file_id):
    job_id = submit(k8s_stack, file_id)
    fake.fail_job(launched(fake, k8s_stack, job_id), exit_code=2)
    view = ends(k8s_stack, job_id)
    assert view["state"] == "FAILURE" and view["exit_status"] == 2 and view["error_class"] == "usage"


def test_deadline_exceeded_ends_timed_out(fake, k8s_stack, file_id):
    job_id = submit(k8s_stack, file_id)
    fake.deadline_exceeded(launched(fake, k8s_stack, job_id))
    view = ends(k8s_stack, job_id)
    assert view["state"] == "TIMED-OUT" and view["error_class"] == "timeout"


def test_cancel_deletes_the_job_in_the_background(fake, k8s_stack, file_id):
    job_id = submit(k8s_stack, file_id)
    name = launched(fake, k8s_stack, job_id)
    fake.add_pod(name, phase="Running")
    resp = k8s_stack.client("kube").post(f"{k8s_stack.url}/function/cancel/{job_id}")
    assert resp.status_code == 200 and resp.json()["state"] == "ABORTED"
    wait_for(lambda: fake.job(name) is None, timeout=60, message="the Job to be deleted")
    assert not fake.pods_of(name)
    deletes = fake.requests_to("DELETE", rf"/jobs/{name}$")
    assert deletes and all(r.query.get("propagationPolicy") == "Background"
                           or (r.body or {}).get("propagationPolicy") == "Background" for r in deletes)


def test_forbidden_create_is_retried_and_api_errors_change_nothing(fake, k8s_stack, file_id):
    fake.fail("POST", r"/namespaces/caesar-jobs/jobs$", 403, times=1)
    job_id = submit(k8s_stack, file_id)
    name = launched(fake, k8s_stack, job_id)  # retried after the 403
    fake.fail("GET", rf"/jobs/{name}$", 500, times=3)
    wait_for(lambda: len(fake.requests_to("GET", rf"/jobs/{name}$")) >= 2, timeout=60, message="polls")
    assert status(k8s_stack, job_id)["state"] == "STARTED"
    fake.complete(name)
    assert ends(k8s_stack, job_id)["state"] == "SUCCESS"


def test_container_only_apps_run_on_kubernetes(fake, k8s_stack, file_id):
    job_id = submit(k8s_stack, file_id, app="caesar")
    job = fake.job(launched(fake, k8s_stack, job_id))
    assert "caesar" in job["spec"]["template"]["spec"]["containers"][0]["image"]
