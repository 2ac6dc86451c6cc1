"""The `caesar` command, as installed by `pip install ./client` into a venv of its own, against the
real local stack: every command, --json parsed, exit codes, the 401 and 4xx messages."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.fixtures.client import INLINE_LIMIT, ClientVenv, cli_env
from tests.fixtures.stack import LocalStack
from tests.helpers import wait_for
from tests.samples import fits_bytes
from tests.synth import make_image, match

COMMANDS = ["login", "whoami", "upload", "files", "file", "download", "rm", "apps", "describe", "submit", "status",
            "wait", "cancel", "jobs", "logs", "output", "run", "accounting"]


class Caesar:
    """Runs the venv's `caesar` with a user's environment (own config folder)."""

    def __init__(self, venv: ClientVenv, home: Path, stack: LocalStack) -> None:
        self.venv = venv
        self.home = home
        self.stack = stack
        self.env = cli_env(home)

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.venv.caesar), *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=env or self.env, cwd=self.home, check=False)

    def json(self, *args: str, **kwargs) -> object:
        done = self(*args, "--json", **kwargs)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("cli-images")
    truth = make_image(str(folder / "field.fits"), size=256, n_sources=12, seed=21)
    (folder / "plain.fits").write_bytes(fits_bytes((64, 48), seed=2))  # no beam: sep refuses it
    # 9 MB: above the inline limit. A real sky (WCS, beam), so an aegean job on it runs for seconds:
    # the cancel tests need it still running (a runner forked from the warm runner refuses an image
    # without WCS within milliseconds, before a cancel arrives).
    make_image(str(folder / "big.fits"), size=1500, n_sources=30, seed=5)
    (folder / "notes.txt").write_text("not a FITS file")
    return {"folder": folder, "truth": truth}


@pytest.fixture(scope="module")
def caesar(client_venv: ClientVenv, client_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Caesar:
    """Signed in with `caesar login` as user 'cli' (the token read from stdin)."""
    cli = Caesar(client_venv, tmp_path_factory.mktemp("cli-home"), client_stack)
    done = cli("login", "--url", client_stack.url, stdin=client_stack.token("cli") + "\n")
    assert done.returncode == 0, done.stderr
    assert f"Logged in to {client_stack.url} as cli" in done.stdout
    return cli


def test_every_command_has_help(caesar: Caesar) -> None:
    top = caesar("--help")
    assert top.returncode == 0 and "Exit codes" in top.stdout
    for name in COMMANDS:
        done = caesar(name, "--help")
        assert done.returncode == 0 and f"usage: caesar {name}" in done.stdout, (name, done.stderr)
        assert "--json" in done.stdout


def test_login_writes_a_private_config_and_whoami_reads_it(caesar: Caesar, client_stack: LocalStack) -> None:
    config = caesar.home / "config" / "caesar" / "config.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert client_stack.url in config.read_text()
    who = caesar.json("whoami")
    assert who["user"] == "cli" and who["url"] == client_stack.url and who["token_source"].startswith("config file")
    # --token on the command line wins over the config file (and CAESAR_TOKEN over it too).
    assert caesar.json("whoami", "--token", client_stack.token("other"))["user"] == "other"
    assert caesar.json("--token", client_stack.token("before"), "whoami")["user"] == "before"  # either side
    env = {**caesar.env, "CAESAR_TOKEN": client_stack.token("envuser")}
    assert caesar.json("whoami", env=env)["user"] == "envuser"


def test_login_refuses_a_bad_token_and_keeps_the_old_one(caesar: Caesar, client_stack: LocalStack) -> None:
    done = caesar("login", "--url", client_stack.url, "--token", "not-a-jwt")
    assert done.returncode == 1
    assert "caesar login" in done.stderr and "make run" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert caesar.json("whoami")["user"] == "cli"


def test_401_gives_one_line_telling_how_to_get_a_token(caesar: Caesar, client_stack: LocalStack,
                                                       tmp_path: Path) -> None:
    fresh = cli_env(tmp_path, client_stack)  # nobody logged in here
    for args in (["files"], ["whoami"], ["jobs", "--json"]):
        done = caesar(*args, env=fresh)
        assert done.returncode == 1, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "not signed in" in lines[0] and "caesar login --url" in lines[0], done.stderr
    doc = json.loads(caesar("files", "--json", env=fresh).stdout)
    assert doc["error"] == "unauthorized" and doc["http_status"] == 401


def test_upload_switches_to_presigned_above_the_inline_limit_files_download_rm(caesar: Caesar, images, tmp_path) -> None:
    folder: Path = images["folder"]
    small, big = folder / "field.fits", folder / "big.fits"
    assert small.stat().st_size < INLINE_LIMIT < big.stat().st_size
    records = caesar.json("upload", str(small), str(big), "--tag", "cli-up")
    assert [r["filename_orig"] for r in records] == ["field.fits", "big.fits"]
    assert all(r["state"] == "ready" for r in records)
    assert "presigned" not in records[0] and records[1]["presigned"] is True and records[1]["parts_sent"] == 2
    small_id, big_id = records[0]["uuid"], records[1]["uuid"]

    listed = caesar.json("files", "--tag", "cli-up")
    assert {f["uuid"] for f in listed} == {small_id, big_id}
    table = caesar("files", "--tag", "cli-up")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["FILE", "NAME", "STATE"]
    assert caesar.json("files", "--limit", "1")[0]["uuid"] == big_id  # newest first
    assert caesar.json("file", big_id)["sha256"] == records[1]["sha256"]

    out = caesar.json("download", big_id, "-o", str(tmp_path))
    assert Path(out["path"]) == tmp_path / "big.fits" and (tmp_path / "big.fits").read_bytes() == big.read_bytes()
    plain = caesar("download", small_id, "-o", str(tmp_path / "copy.fits"))
    assert plain.returncode == 0 and (tmp_path / "copy.fits").read_bytes() == small.read_bytes()

    gone = caesar.json("rm", big_id)
    assert gone[0]["uuid"] == big_id
    missing = caesar("file", big_id)
    assert missing.returncode == 1 and "not found" in missing.stderr.lower()


def test_upload_refusals_are_clear(caesar: Caesar, images) -> None:
    folder: Path = images["folder"]
    done = caesar("upload", str(folder / "notes.txt"))
    assert done.returncode == 1 and "notes.txt" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    nofile = caesar("upload", str(folder / "absent.fits"))
    assert nofile.returncode == 1 and "no such file" in nofile.stderr


def test_apps_and_describe(caesar: Caesar) -> None:
    assert {"sep", "aegean", "pybdsf"} <= set(caesar.json("apps"))
    text = caesar("describe", "sep")
    assert text.returncode == 0
    header = text.stdout.splitlines()[1]
    assert header.split() == ["OPTION", "TYPE", "DEFAULT", "RANGE/CHOICES", "DESCRIPTION"]
    thresh = next(line for line in text.stdout.splitlines() if line.startswith("thresh "))
    assert thresh.split()[:4] == ["thresh", "float", "5", "[0.5,"] and "Detection threshold" in thresh
    kernel = next(line for line in text.stdout.splitlines() if line.startswith("filter_kernel "))
    assert "{none, beam}" in kernel
    options = caesar.json("describe", "sep")
    assert options["minarea"]["type"] == "int"
    unknown = caesar("describe", "nosuchapp")
    assert unknown.returncode == 1 and "not found" in unknown.stderr.lower()


def test_run_gives_the_catalogue_of_the_image(caesar: Caesar, images, tmp_path: Path) -> None:
    """The issue's "done when": caesar run sep img.fits -o out/ -> a catalogue with the sources."""
    out = tmp_path / "out"
    done = caesar("run", "sep", str(images["folder"] / "field.fits"), "-o", str(out), "-p", "thresh=5",
                  "--tag", "cli-run")
    assert done.returncode == 0, done.stderr
    assert "ended SUCCESS" in done.stderr
    names = {p.name for p in out.iterdir()}
    assert {"catalog.csv", "catalog.vot", "catalog.json", "sources.reg", "preview.png", "job.log",
            "manifest.json"} <= names
    with open(out / "catalog.csv", newline="") as fh:
        rows = [row for row in csv.DictReader(line for line in fh if not line.startswith("#"))]
    catalogue = [{"x": float(r["x"]), "y": float(r["y"])} for r in rows]
    found = match(catalogue, images["truth"], radius_pix=3.0)
    assert found.recovered_fraction(images["truth"], min_snr=10) == 1.0, found
    assert json.loads((out / "catalog.json").read_text())


def test_submit_converts_types_status_wait_logs_output_jobs(caesar: Caesar, images, tmp_path: Path) -> None:
    file_id = caesar.json("upload", str(images["folder"] / "field.fits"))[0]["uuid"]
    done = caesar("submit", "sep", file_id, "-p", "minarea=4", "-p", "thresh=6", "--tag", "cli-submit",
                  "--timeout", "600")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert len(job_id) == 36
    status = caesar.json("status", job_id)
    assert status["job_inputs"] == {"minarea": 4, "thresh": 6.0} and status["timeout"] == 600  # numbers, not strings
    final = caesar.json("wait", job_id, "--timeout", "300")
    assert final["state"] == "SUCCESS" and final["progress"] == 100
    text = caesar("status", job_id)
    assert "SUCCESS" in text.stdout and "minarea=4" in text.stdout

    log = caesar("logs", job_id)
    assert log.returncode == 0 and log.stdout.strip()
    assert caesar.json("logs", job_id)["log"].strip() == log.stdout.strip()

    one = caesar.json("output", job_id, "-o", str(tmp_path / "one"), "--product", "catalog.csv")
    assert [Path(p).name for p in one["files"]] == ["catalog.csv"]
    every = caesar.json("output", job_id, "-o", str(tmp_path / "all"))
    assert {Path(p).name for p in every["files"]} >= {"catalog.csv", "preview.png", "manifest.json"}
    archive = caesar.json("output", job_id, "-o", str(tmp_path / "tar"), "--no-unpack")
    assert archive["files"] == [str(tmp_path / "tar" / f"{job_id}.tar.gz")]

    listed = caesar.json("jobs", "--app", "sep", "--state", "success")
    assert job_id in {j["job_id"] for j in listed}
    assert caesar.json("jobs", "--limit", "1")[0]["job_id"] == job_id
    table = caesar("jobs", "--state", "SUCCESS")
    assert table.stdout.splitlines()[0].split()[:3] == ["JOB", "APP", "STATE"] and job_id in table.stdout
    usage = caesar.json("accounting")
    assert usage["usage"]["files"] >= 1


def test_submit_with_a_local_path_and_wait_exit_codes(caesar: Caesar, images) -> None:
    ok = caesar.json("submit", "sep", str(images["folder"] / "field.fits"), "--wait")
    assert ok["state"] == "SUCCESS" and ok["data_inputs"]
    failed = caesar("submit", "sep", str(images["folder"] / "plain.fits"), "--wait", "--json")
    assert failed.returncode == 1
    job = json.loads(failed.stdout)
    assert job["state"] == "FAILURE"
    waited = caesar("wait", job["job_id"])
    assert waited.returncode == 1 and "FAILURE" in waited.stdout


def test_usage_errors_exit_2(caesar: Caesar, images) -> None:
    field = str(images["folder"] / "field.fits")
    assert caesar("nosuchcommand").returncode == 2
    assert caesar("submit", "sep").returncode == 2  # INPUT missing
    assert caesar("jobs", "--state", "DONE").returncode == 2
    wrong_type = caesar("submit", "sep", field, "-p", "minarea=five")
    assert wrong_type.returncode == 2 and "minarea" in wrong_type.stderr and "not an integer" in wrong_type.stderr
    out_of_range = caesar("submit", "sep", field, "-p", "minarea=-3", "--json")
    assert out_of_range.returncode == 2 and "minarea" in out_of_range.stderr
    doc = json.loads(out_of_range.stdout)
    assert doc["error"] == "invalid_option" and doc["option"] == "minarea" and doc["http_status"] == 400
    unknown = caesar("submit", "sep", field, "-p", "nope=1")
    assert unknown.returncode == 2 and "nope" in unknown.stderr


def test_cancel_and_4xx_messages(caesar: Caesar, client_stack: LocalStack, images) -> None:
    file_id = caesar.json("upload", str(images["folder"] / "big.fits"))[0]["uuid"]
    job_id = caesar("submit", "aegean", file_id).stdout.strip()
    aborted = caesar.json("cancel", job_id)
    assert aborted["state"] == "ABORTED"
    assert caesar("cancel", job_id).returncode == 0  # idempotent
    assert caesar("wait", job_id).returncode == 1  # an aborted job
    logs = caesar("logs", job_id)
    assert logs.returncode == 1 and len(logs.stderr.strip().splitlines()) == 1
    finished = caesar.json("jobs", "--state", "SUCCESS", "--limit", "1")[0]["job_id"]
    conflict = caesar("cancel", finished)
    assert conflict.returncode == 1 and "caesar:" in conflict.stderr and len(conflict.stderr.strip().splitlines()) == 1
    other = subprocess.run([str(caesar.venv.caesar), "status", job_id, "--token", client_stack.token("mallory")],
                           capture_output=True, text=True, env=caesar.env, timeout=60, check=False)
    assert other.returncode == 1 and "not found" in other.stderr.lower()  # another user's job: 404


def test_logs_of_a_running_job_says_it_is_not_finished(caesar: Caesar, images) -> None:
    file_id = caesar.json("upload", str(images["folder"] / "big.fits"))[0]["uuid"]
    job_id = caesar("submit", "aegean", file_id).stdout.strip()
    try:
        done = caesar("logs", job_id, "--json")
        assert done.returncode == 1 and "exist once it ends" in done.stderr
        assert json.loads(done.stdout)["error"] == "not_finished"
    finally:
        caesar("cancel", job_id)


def test_ctrl_c_while_run_waits_asks_and_cancels(caesar: Caesar, images, tmp_path: Path) -> None:
    env = {**caesar.env, "CAESAR_PROGRESS": "1"}
    # As from a terminal, whose shell starts the command with SIGINT at its default: a suite run
    # in the background of a non-interactive shell inherits SIGINT ignored, Python then leaves it
    # ignored, and Ctrl-C would do nothing (how this test failed now and then: the CLI ran on).
    at_default = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", at_default, str(caesar.venv.caesar), "run", "aegean",
                             str(images["folder"] / "big.fits"), "-o", str(tmp_path / "out")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=caesar.home)
    seen: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        while chunk := proc.stderr.read(1):
            seen.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: "submitted" in "".join(seen), timeout=120, message="the job to be submitted")
        job_id = "".join(seen).split("job ", 1)[1].split()[0]
        # The live bar of `wait`: app, job, state and percent.
        wait_for(lambda: re.search(rf"aegean {job_id[:8]} (PENDING|STARTED|RUNNING) +\d+%\|",
                                   "".join(seen).split("submitted", 1)[1]), timeout=60, message="the job's bar")
        proc.send_signal(signal.SIGINT)
        try:
            wait_for(lambda: "Cancel job" in "".join(seen), timeout=60, message="the question")
        except TimeoutError as exc:  # say what the CLI printed
            raise AssertionError(f"{exc}; exit status {proc.poll()}; stderr so far: {''.join(seen)[-1500:]!r}") from None
        assert proc.stdin is not None
        proc.stdin.write("y\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    assert caesar.json("status", job_id)["state"] == "ABORTED"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
