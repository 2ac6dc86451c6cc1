"""Issue 18 items 3 and 5: stopping the local stack keeps the outcome a runner already wrote
(result.json wins over "interrupted"), and a job's work folder (with its decompressed input)
goes when the job ends, not when its record expires."""

from __future__ import annotations

from caesar_faas.backends.local import INTERRUPTED, terminate_all
from caesar_faas.runner.contract import RESULT_FILE
from tests.fixtures.jobs import JobsEnv
from tests.helpers import wait_for


def running(env: JobsEnv) -> str:
    env.act_as_dispatcher()
    job_id = env.submit("alice")["job_id"]
    env.wait_state(job_id, "RUNNING")
    wait_for(lambda: (env.workdir(job_id) / "child.pid").exists(), message="fake runner start")
    return job_id


def test_stop_as_a_job_completes_records_its_result_not_interrupted(jobs_env: JobsEnv) -> None:
    """Before: terminate_all wrote FAILURE "Interrupted" without reading result.json."""
    job_id = running(jobs_env)
    jobs_env.tap.quiesce()  # the stack is stopping: nobody applies the final event
    jobs_env.release(job_id, state="SUCCESS", exit_code=0, products=["catalog.csv", "job.log"], no_event=True)
    wait_for(lambda: (jobs_env.workdir(job_id) / RESULT_FILE).exists(), message="result.json")
    assert terminate_all(jobs_env.settings) == 1
    job = jobs_env.job(job_id)
    assert (job["state"], job["exit_status"], job["active"]) == ("SUCCESS", 0, False)
    assert job["products"] == ["catalog.csv", "job.log"] and job["progress"] == 100
    assert not jobs_env.workdir(job_id).exists()


def test_stop_of_a_running_job_is_still_an_interruption(jobs_env: JobsEnv) -> None:
    job_id = running(jobs_env)
    jobs_env.tap.quiesce()
    assert terminate_all(jobs_env.settings) == 1
    job = jobs_env.job(job_id)
    assert (job["state"], job["error_class"], job["status"]) == ("FAILURE", "system", INTERRUPTED)
    assert jobs_env.processes(job_id) == [] and not jobs_env.workdir(job_id).exists()


def test_work_folder_goes_when_the_job_ends(jobs_env: JobsEnv) -> None:
    """Before: the folder (a full decompressed input) stayed for the whole result lifetime."""
    job_id = running(jobs_env)
    assert jobs_env.workdir(job_id).exists()
    jobs_env.release(job_id, state="SUCCESS", exit_code=0)
    wait_for(lambda: (j := jobs_env.job(job_id))["state"] == "SUCCESS" and not j["active"], message="job end")
    assert not jobs_env.workdir(job_id).exists()
    assert jobs_env.job(job_id)["products"] == ["catalog.csv"]
