"""The Slurm batch job the backend submits (backends/slurm/job.py, api.py): pure, no cluster.

The script is fixed text plus the runner's argv, each word quoted; it is run here by a real
/bin/sh to show the argv arrives verbatim and nothing in it is expanded."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from caesar_faas.backends.slurm.api import V0038, SubmitRequest, api_for, decode_wait_status
from caesar_faas.backends.slurm.job import (
    SCRIPT_HEAD,
    batch_script,
    build_request,
    cpus,
    job_id_of,
    memory_mb,
    runner_argv,
    time_limit,
)
from caesar_faas.config import Settings, load_settings
from caesar_faas.jobs.transfer import FORBIDDEN_ENV
from tests.fixtures.k8s import sample_job, sample_spec

TRANSFER = {"input_url": "http://caesar.example.org/in?sig=1", "product_urls": {"catalog.csv": "http://x/c?sig=2"}}
HOSTILE = ["$(touch pwned)", "`touch pwned`", "a b", "it's", "; rm -rf /", "$HOME", "*", "\\n"]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CAESAR_HOME", str(tmp_path))
    monkeypatch.setenv("CAESAR_NATS_URL", "nats://service-side:4222")
    for name in ("CAESAR_SLURM_RUNNER", "CAESAR_SLURM_IMAGE_DIR", "CAESAR_SLURM_NATS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAESAR_SLURM_WORKDIR", "/scratch/caesar")
    monkeypatch.setenv("CAESAR_SLURM_PARTITION", "astro")
    monkeypatch.setenv("CAESAR_SLURM_ACCOUNT", "inaf")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "service-secret")  # must not reach the job
    monkeypatch.setenv("CAESAR_NATS_TOKEN", "service-nats-token")  # nor the service's NATS token
    monkeypatch.delenv("CAESAR_SLURM_NATS_TOKEN", raising=False)
    return load_settings()


def with_slurm(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, slurm=dataclasses.replace(settings.slurm, **changes))


def test_request_names_the_job_and_carries_limits_and_place(settings: Settings) -> None:
    job = sample_job(timeout=600)
    request = build_request(job, sample_spec(), settings, TRANSFER)
    assert request.name == f"caesar-{job['id']}" and request.comment == job["id"]
    assert job_id_of(request.name, request.comment) == job["id"]
    assert request.time_limit == 11  # 600 s + the 60 s margin, in minutes
    assert request.cpus == 1 and request.memory_mb == 2048  # the spec's limits: cpu 1, memory 2Gi
    assert (request.partition, request.account, request.qos) == ("astro", "inaf", None)
    assert request.workdir == "/scratch/caesar"
    assert request.stdout == f"/scratch/caesar/caesar-{job['id']}.out"


def test_environment_is_the_runner_contract_with_transfer_urls_only(settings: Settings) -> None:
    job = sample_job(options={"label": HOSTILE[0]})
    env = build_request(job, sample_spec(), settings, TRANSFER).environment
    document = json.loads(env["CAESAR_JOB"])
    assert document["transfer"] == TRANSFER and document["options"] == {"label": HOSTILE[0]}
    assert env["CAESAR_WORKDIR"] == f"/scratch/caesar/{job['id']}" and env["HOME"] == env["CAESAR_WORKDIR"]
    assert env["CAESAR_NATS_URL"] == "nats://service-side:4222"
    assert not set(env) & set(FORBIDDEN_ENV)
    assert not [k for k in env if k.startswith("AWS_")] and "service-secret" not in json.dumps(env)
    assert "CAESAR_NATS_TOKEN" not in env and "service-nats-token" not in json.dumps(env)
    assert env["CAESAR_JOB_KEY"] and env["CAESAR_JOB_KEY"] != settings.status_key
    assert set(env) <= {"PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "CAESAR_JOB", "CAESAR_NATS_URL", "CAESAR_JOB_KEY",
                        "CAESAR_WORKDIR", "HOME", "TMPDIR", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                        "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "MPLBACKEND", "PYTHONUNBUFFERED"}


def test_nodes_reach_nats_at_their_own_address_with_their_own_token(settings: Settings) -> None:
    nodes = with_slurm(settings, nats_url="nats://login:4222", nats_token="nodes-token")
    env = build_request(sample_job(), sample_spec(), nodes, TRANSFER).environment
    assert env["CAESAR_NATS_URL"] == "nats://login:4222" and env["CAESAR_NATS_TOKEN"] == "nodes-token"


def test_user_options_never_reach_the_script(settings: Settings) -> None:
    job = sample_job(options={"a": HOSTILE[0], "b": HOSTILE[4]})
    script = build_request(job, sample_spec(), settings, TRANSFER).script
    assert script.startswith(SCRIPT_HEAD)
    assert HOSTILE[0] not in script and HOSTILE[4] not in script and job["id"] not in script


def test_default_runner_is_this_interpreter(settings: Settings) -> None:
    assert runner_argv(sample_spec(), settings) == [sys.executable, "-m", "caesar_faas.runner"]
    env = build_request(sample_job(), sample_spec(), settings, TRANSFER).environment
    assert Path(env["PYTHONPATH"], "caesar_faas", "runner").is_dir()


def test_configured_runner_is_split_into_words(settings: Settings) -> None:
    configured = with_slurm(settings, runner="/opt/caesar/venv/bin/python -m caesar_faas.runner")
    assert runner_argv(sample_spec(), configured) == ["/opt/caesar/venv/bin/python", "-m", "caesar_faas.runner"]


def test_container_apps_run_from_their_image(settings: Settings) -> None:
    image_app = sample_spec(name="caesar", local_entry=None, command=["/opt/caesar-runner/bin/python", "-m",
                                                                      "caesar_faas.runner"])
    with pytest.raises(ValueError, match="CAESAR_SLURM_IMAGE_DIR"):
        runner_argv(image_app, settings)
    with_images = with_slurm(settings, image_dir="/cvmfs/caesar/images/")
    assert runner_argv(image_app, with_images) == [
        "apptainer", "exec", "/cvmfs/caesar/images/caesar.sif", "/opt/caesar-runner/bin/python", "-m",
        "caesar_faas.runner"]
    # apptainer/singularity as the runner: every app runs from its image
    every = with_slurm(with_images, runner="/usr/bin/singularity")
    assert runner_argv(sample_spec(), every)[:3] == ["/usr/bin/singularity", "exec", "/cvmfs/caesar/images/sep.sif"]
    env = build_request(sample_job(app="caesar"), image_app, with_images, TRANSFER).environment
    assert "PYTHONPATH" not in env  # the image has its own runner


def test_script_runs_the_argv_verbatim_and_expands_nothing(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *HOSTILE]
    script = tmp_path / "job.sh"
    script.write_text(batch_script(argv))
    work = tmp_path / "work" / "job"
    done = subprocess.run(["/bin/sh", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "CAESAR_WORKDIR": str(work)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == HOSTILE
    assert not (tmp_path / "pwned").exists() and not (work.parent / "pwned").exists()
    assert not work.exists()  # the scratch folder goes with the runner


def test_script_keeps_the_runners_exit_code(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text(batch_script(["sh", "-c", "exit 3"]))
    done = subprocess.run(["/bin/sh", str(script)], capture_output=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "CAESAR_WORKDIR": str(tmp_path / "w")})
    assert done.returncode == 3


def test_script_refuses_to_run_without_its_work_folder(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text(batch_script(["touch", str(tmp_path / "ran")]))
    done = subprocess.run(["/bin/sh", str(script)], capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 70 and not (tmp_path / "ran").exists()


@pytest.mark.parametrize("argv", [[], [""], ["python", ""]])
def test_empty_runner_words_are_refused(argv: list[str]) -> None:
    with pytest.raises(ValueError):
        batch_script(argv)


@pytest.mark.parametrize(("timeout", "margin", "minutes"), [(1, 0, 1), (60, 0, 1), (61, 0, 2), (600, 60, 11),
                                                            (3600, 60, 61), (0, 0, 1)])
def test_time_limit_is_whole_minutes(timeout: float, margin: int, minutes: int) -> None:
    assert time_limit(timeout, margin) == minutes


@pytest.mark.parametrize(("resources", "n_cpus", "mb"), [
    ({"limits": {"cpu": "1", "memory": "3Gi"}, "requests": {"cpu": "500m", "memory": "512Mi"}}, 1, 3072),
    ({"requests": {"cpu": "1500m", "memory": "1G"}}, 2, 954),
    ({"limits": {"cpu": "4", "memory": "100Mi"}}, 4, 100),
    ({}, 1, 1024),
])
def test_cpus_and_memory_come_from_the_app_spec(resources: dict, n_cpus: int, mb: int) -> None:
    spec = sample_spec(resources=resources)
    assert cpus(spec) == n_cpus and memory_mb(spec) == mb


def test_only_matching_name_and_comment_are_ours() -> None:
    job_id = "0b6f2b4e-8c0e-4d55-9d55-9b2a5a0c1e11"
    assert job_id_of(f"caesar-{job_id}", job_id) == job_id
    assert job_id_of(f"caesar-{job_id}", "other") is None
    assert job_id_of("caesar-x", "x") is None  # not an id of ours
    assert job_id_of(f"someone-{job_id}", job_id) is None


def test_v0038_submit_body_uses_the_measured_shapes() -> None:
    request = SubmitRequest(name="caesar-j", comment="j", script="#!/bin/sh\n", environment={"A": "1"},
                            workdir="/w", stdout="/w/o", time_limit=2, cpus=1, memory_mb=512, partition="p")
    body = V0038().submit_body(request)
    job = body["job"]
    assert body["script"] == "#!/bin/sh\n" and job["environment"] == {"A": "1"}
    assert job["time_limit"] == 2 and job["memory_per_node"] == 512 and job["partition"] == "p"
    assert job["no_requeue"] is True and "requeue" not in job and "argv" not in job
    assert "account" not in job and "qos" not in job


def test_unknown_api_version_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="v0.0.38"):
        api_for("v0.0.41")


@pytest.mark.parametrize(("raw", "decoded"), [(0, (0, None)), (768, (3, None)), (512, (2, None)),
                                              (36608, (143, None)), (15, (143, 15)), (9, (137, 9))])
def test_wait_status_is_decoded(raw: int, decoded: tuple) -> None:
    assert decode_wait_status(raw) == decoded


def test_without_slurm_the_cluster_tests_say_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures import slurm as fixture

    monkeypatch.setattr(fixture, "_which", lambda name: None if name == "slurmrestd" else f"/usr/sbin/{name}")
    reason = fixture.why_not_runnable()
    assert reason and "apt-get install slurmctld slurmd slurmrestd munge slurm-wlm-jwt-plugin" in reason
    assert "slurmrestd" in reason.split("missing:")[1]
