"""The real runner when things go wrong: bad input, a finder that rejects its options, the job
timeout, cancellation by SIGTERM, hostile strings, NATS away. Each ends with the documented state,
exit code and error class (runner/outcome.py), and never leaves a process behind."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from caesar_faas.apps.registry import get_app
from caesar_faas.apps.validation import validate_options
from tests.fixtures.runner import ROOT
from tests.helpers import alive, free_port, wait_for
from tests.synth import make_image

PID_RE = re.compile(r"command started \(pid (\d+)\)")


def defaults(app: str, **changes: Any) -> dict[str, Any]:
    return validate_options(get_app(app), changes)



def finder_pids(log: str) -> list[int]:
    return [int(pid) for pid in PID_RE.findall(log)]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    paths = {"small": folder / "small.fits", "nobeam": folder / "nobeam.fits", "big": folder / "big.fits",
             "text": folder / "notes.fits"}
    make_image(str(paths["small"]), size=256, n_sources=8, seed=3)
    make_image(str(paths["nobeam"]), size=256, n_sources=8, seed=4, header_beam=False)
    # BANE needs >10 s on one core for 2048 x 2048 pixels: long enough to time out or cancel it.
    make_image(str(paths["big"]), size=2048, n_sources=50, seed=5)
    paths["text"].write_text("this is not FITS\n" * 100)
    return paths


def failure_products(job) -> None:
    """A failed job still uploads its log and a manifest of it."""
    stored = job.stored()
    assert sorted(stored) == ["job.log", "manifest.json"]
    (entry,) = json.loads(stored["manifest.json"])
    assert entry["name"] == "job.log" and entry["sha256"] == hashlib.sha256(stored["job.log"]).hexdigest()


def finished(job) -> dict[str, Any]:
    events = job.events()
    assert events[0]["data"]["phase"] == "started"
    assert events[-1]["data"]["phase"] == "finished"
    return events[-1]["data"]


def test_image_without_beam_is_a_usage_failure(runner_job, images) -> None:
    job = runner_job("sep", images["nobeam"], options=defaults("sep"))
    assert job.run(wait=120) == 2
    data = finished(job)
    assert (data["state"], data["exit_code"], data["error_class"]) == ("FAILURE", 2, "usage")
    assert "beam" in data["message"].lower()
    assert data["message"] in job.log_text()
    assert job.result()["error_class"] == "usage"
    assert not finder_pids(job.log_text())  # refused before any finder ran
    failure_products(job)


def test_input_that_is_not_fits_is_a_usage_failure(runner_job, images) -> None:
    job = runner_job("sep", images["text"], options=defaults("sep"))
    assert job.run(wait=120) == 2
    data = finished(job)
    assert (data["state"], data["error_class"]) == ("FAILURE", "usage")
    assert "FITS" in data["message"]


def test_input_not_matching_its_recorded_sha256_is_refused(runner_job, images) -> None:
    declared = hashlib.sha256(b"the file the client meant to upload").hexdigest()
    job = runner_job("sep", images["small"], options=defaults("sep"), sha256=declared)
    assert job.run(wait=120) == 2
    data = finished(job)
    assert (data["state"], data["error_class"]) == ("FAILURE", "usage")
    actual = hashlib.sha256(images["small"].read_bytes()).hexdigest()
    assert f"sha256 is {actual}, not {declared}" in data["message"]
    assert not finder_pids(job.log_text())  # no catalogue from bytes that are not the upload
    failure_products(job)


def test_broken_contract_is_a_system_failure(tmp_path: Path) -> None:
    """A backend bug (CAESAR_JOB unusable): nothing to report to, but result.json says why."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAESAR_")}
    env.update(CAESAR_JOB='{"id": "x"}', CAESAR_WORKDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "caesar_faas.runner"], env=env, cwd=tmp_path,
                          capture_output=True, timeout=60)
    assert proc.returncode == 70
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["state"], result["error_class"]) == ("FAILURE", "system")
    assert "CAESAR_JOB" in (tmp_path / "job.log").read_text()


def test_unknown_app_is_a_usage_failure(runner_job, images) -> None:
    job = runner_job("no-such-finder", images["small"])
    assert job.run(wait=60) == 2
    assert finished(job)["error_class"] == "usage"


def test_hostile_option_reaches_the_finder_verbatim_never_a_shell(runner_job, images, tmp_path: Path) -> None:
    """Submit validation would refuse this enum value; the runner must be safe even without it.
    SEP receives the string as its filter_type, rejects it and exits 1: FAILURE usage, exit 1."""
    marker = tmp_path / "pwned"
    hostile = f"$(touch {marker}); rm -rf / #"
    job = runner_job("sep", images["small"], options=defaults("sep", filter_kernel="beam") | {"filter_type": hostile},
                     filename=f"; touch {marker} #.fits")
    assert job.run(wait=120) == 1
    data = finished(job)
    assert (data["state"], data["exit_code"], data["error_class"]) == ("FAILURE", 1, "usage")
    assert "exit code 1" in data["message"]
    assert hostile in (job.workdir / "sep_args.json").read_text()  # passed as data, not as a command
    assert not marker.exists()
    failure_products(job)


def test_hostile_names_end_up_as_plain_text_in_the_products(runner_job, images, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    filename = f"$(touch {marker}); rm -rf / #`touch {marker}`.fits"
    job = runner_job("sep", images["small"], options=defaults("sep"), filename=filename)
    assert job.run(wait=120) == 0
    assert not marker.exists()
    stored = job.stored()
    assert json.loads(stored["catalog.json"])["provenance"]["input_filename"] == filename
    assert sorted(p.name for p in job.workdir.iterdir() if p.suffix == ".fits")[0] == "input.fits"
    assert not any("touch" in p.name for p in job.workdir.rglob("*"))  # the name never became a path


def test_timeout_kills_the_finder_and_ends_timed_out(runner_job, images) -> None:
    job = runner_job("aegean", images["big"], options=defaults("aegean"), timeout=8)
    assert job.run(wait=60) == 124
    data = finished(job)
    assert (data["state"], data["exit_code"], data["error_class"]) == ("TIMED-OUT", 124, "timeout")
    assert 8 <= data["elapsed"] < 20
    pids = finder_pids(job.log_text())
    assert pids, "BANE should have been running when the timeout expired"
    assert not any(alive(pid) for pid in pids)
    failure_products(job)


def test_sigterm_cancels_promptly_and_leaves_no_process(runner_job, images) -> None:
    job = runner_job("aegean", images["big"], options=defaults("aegean"), timeout=300)
    proc = job.start()
    try:
        pid = wait_for(lambda: finder_pids(job.log_text()), timeout=60, message="BANE to start")[0]
        assert alive(pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not alive(pid)
    events = job.events(until_finished=False, idle=1.0)
    assert events and all(e["data"]["phase"] != "finished" for e in events)  # the dispatcher owns ABORTED
    assert "cancelled" in job.log_text()
    assert job.stored() == {}  # nothing uploaded for a cancelled job


def test_nats_unreachable_the_job_still_completes(runner_job, images) -> None:
    """Events cannot be published, the job goes on and result.json holds the outcome."""
    job = runner_job("sep", images["small"], options=defaults("sep"))
    job.nats_url = f"nats://127.0.0.1:{free_port()}"  # nobody listens there
    try:
        code = job.run(wait=120)
    except subprocess.TimeoutExpired:  # pragma: no cover - reported by the assertion below
        code = None
    assert code == 0
    assert job.result()["state"] == "SUCCESS"
    assert "cannot publish status events" in job.log_text()
    assert "manifest.json" in job.stored()
