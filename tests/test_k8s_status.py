"""The pure mapping of Job conditions and pod states (k8s_status.classify), for the cases the
fake server's helpers do not produce, and the fake server's own list/selector behaviour."""

from __future__ import annotations

from caesar_faas.backends.k8s_status import classify, parse_time
from tests.fixtures.k8s import FakeKubernetes, match_labels, sample_job, timestamp


def job_with(*conditions: tuple[str, str]) -> dict:
    return {"status": {"conditions": [{"type": t, "status": "True", "reason": r} for t, r in conditions]}}


def test_success_criteria_met_alone_is_success():
    assert classify(job_with(("SuccessCriteriaMet", "CompletionsReached")), [], now=0, grace=300).result.state == "SUCCESS"


def test_failure_target_is_final_before_failed_appears():
    verdict = classify(job_with(("FailureTarget", "DeadlineExceeded")), [], now=0, grace=300)
    assert (verdict.result.state, verdict.result.error_class, verdict.delete) == ("TIMED-OUT", "timeout", False)


def test_condition_with_status_false_does_not_count():
    job = {"status": {"conditions": [{"type": "Failed", "status": "False", "reason": "X"}]}}
    assert classify(job, [], now=0, grace=300).result.state == "PENDING"


def test_terminating_pods_are_not_judged_stuck():
    pod = {"metadata": {"creationTimestamp": timestamp(ago=1000), "deletionTimestamp": timestamp()},
           "status": {"phase": "Pending", "containerStatuses": [
               {"name": "runner", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}
    verdict = classify({"status": {}}, [pod], now=parse_time(timestamp()), grace=300)
    assert verdict.result.state == "PENDING" and not verdict.delete


def test_parse_time():
    assert parse_time("1970-01-01T00:01:00Z") == 60.0
    assert parse_time(None) is None and parse_time("yesterday") is None


def test_label_selectors_of_the_fake():
    labels = {"job-name": "caesar-x", "caesar.io/owner": "alice"}
    assert match_labels(labels, "job-name=caesar-x")
    assert match_labels(labels, "job-name==caesar-x,caesar.io/owner")
    assert not match_labels(labels, "job-name=caesar-y")
    assert not match_labels(labels, "caesar.io/owner!=alice")
    assert match_labels(labels, "!missing") and not match_labels(labels, "!job-name")
    assert match_labels(labels, None)


def test_fake_lists_jobs_by_label_and_creates_pods_on_request(k8s_backend):
    with FakeKubernetes(auto_pods=True) as fake:
        k8s_backend._api_client = fake.api_client()
        alice, bob = sample_job(owner="alice"), sample_job(owner="bob")
        ref = k8s_backend.launch(alice)
        k8s_backend.launch(bob)
        listed = k8s_backend.batch.list_namespaced_job("caesar-jobs", label_selector="caesar.io/owner=alice")
        assert [j.metadata.name for j in listed.items] == [ref["name"]]
        assert len(fake.pods_of(ref["name"])) == 1  # auto_pods: the "controller" made one
        assert k8s_backend.poll(dict(alice, backend_ref=ref)).state == "PENDING"
        pod = fake.pods_of(ref["name"])[0]
        assert pod["metadata"]["labels"]["caesar.io/job-id"] == alice["id"]
