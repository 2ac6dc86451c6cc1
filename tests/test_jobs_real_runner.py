"""One job end to end through the real runner (`python -m caesar_faas.runner`) and a real
finder (sep) on a small synthetic image: the local backend's environment contract works with
the runner the stack really starts, and the dispatcher applies its real status events."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from caesar_faas.backends.local import LocalBackend
from caesar_faas.events.subjects import JOBS_STATUS
from caesar_faas.ids import epoch, new_id
from tests.fixtures.jobs import JobsEnv
from tests.helpers import wait_for
from tests.synth import make_image


@pytest.mark.parametrize("warm", [False, True], ids=["plain", "forked-from-the-warm-runner"])
def test_sep_job_runs_through_the_real_runner(jobs_env: JobsEnv, tmp_path: Path, warm: bool) -> None:
    jobs_env.backend = LocalBackend(dataclasses.replace(jobs_env.settings, local_warm_runner=warm))
    assert jobs_env.backend.runner_module == "caesar_faas.runner"
    runner = jobs_env.backend._warm_runner(None)
    if warm:  # the zygote imported the runner and exercised its product writers first
        assert runner is not None
        runner.stop()
        jobs_env.backend.warm()
        wait_for(runner.ready, timeout=180, message="warm runner ready")
    else:
        assert runner is None
    image = tmp_path / "synth.fits"
    make_image(str(image), size=256, n_sources=8, seed=5)
    file_id = new_id()
    key = f"files/alice/{file_id}"
    with open(image, "rb") as fh:
        info = jobs_env.storage.put(key, fh, size=image.stat().st_size)
    jobs_env.store.insert("files", {"id": file_id, "owner": "alice", "created": epoch(), "status": "ready",
                                    "filename_orig": "synth.fits", "format": "fits", "size": info.size,
                                    "key": key, "tag": ""})
    jobs_env.act_as_dispatcher()
    job_id = jobs_env.submit("alice", data_inputs=file_id, job_inputs={"thresh": 5.0})["job_id"]
    done = wait_for(lambda: (j := jobs_env.job(job_id))["state"] in ("SUCCESS", "FAILURE") and
                    not j["active"] and j, timeout=120, interval=0.2, message="real job end")
    assert done["state"] == "SUCCESS", (done["status"], (jobs_env.workdir(job_id) / "runner.out").read_text())
    assert done["exit_status"] == 0 and done["progress"] == 100 and "catalog.csv" in done["products"]
    stored = {o.key.rsplit("/", 1)[1] for o in jobs_env.storage.list(f"jobs/alice/{job_id}/")}
    assert set(done["products"]) <= stored
    progress = [e["data"]["progress"] for e in jobs_env.tap.of(JOBS_STATUS, job_id)]
    assert progress == sorted(progress) and progress[-1] == 100
    assert jobs_env.processes(job_id) == []
    if runner is not None:
        assert runner.forks == 1
