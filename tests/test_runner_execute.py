"""The runner's command executor: argv lists only, output to the job log, deadlines and
cancellation kill the whole process tree (no finder process survives its job)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from caesar_faas.runner.cancel import Cancelled
from caesar_faas.runner.execute import DeadlineExceeded, run_command, run_commands
from caesar_faas.runner.outcome import error_class_for_exit, exit_code_of
from tests.helpers import alive, wait_for

PY = sys.executable

# A parent that starts a sleeping grandchild, writes both pids, then sleeps: like BANE's workers.
TREE = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "open(sys.argv[1], 'w').write(f'{child.pid}')\n"
    "time.sleep(60)\n"
)



def test_command_output_goes_to_the_log_and_its_code_is_returned(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("runner line\n")
    code = run_command([PY, "-c", "import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(3)"],
                       cwd=tmp_path, log_path=log, deadline=time.monotonic() + 30)
    assert code == 3
    text = log.read_text()
    assert text.startswith("runner line\n")  # appended, not truncated
    assert "to stdout" in text and "to stderr" in text


def test_arguments_never_reach_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = [f"; touch {marker} #", f"$(touch {marker})", f"`touch {marker}`", f"a && touch {marker}"]
    log = tmp_path / "job.log"
    code = run_command([PY, "-c", "import sys; print(repr(sys.argv[1:]))", *hostile], cwd=tmp_path,
                       log_path=log, deadline=time.monotonic() + 30)
    assert code == 0
    assert not marker.exists()
    assert repr(hostile) in log.read_text()  # every argument arrived verbatim


def test_commands_stop_at_the_first_failure(tmp_path: Path) -> None:
    done: list[tuple[int, int]] = []
    last, code = run_commands(
        [[PY, "-c", "pass"], [PY, "-c", "raise SystemExit(2)"], [PY, "-c", "open('never', 'w')"]],
        cwd=tmp_path, log_path=tmp_path / "job.log", deadline=time.monotonic() + 60,
        on_finished=lambda index, total: done.append((index, total)))
    assert (last, code) == (1, 2)
    assert done == [(0, 3)]
    assert not (tmp_path / "never").exists()


def test_deadline_kills_the_command_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        run_command([PY, "-c", TREE, str(pids)], cwd=tmp_path, log_path=tmp_path / "job.log",
                    deadline=time.monotonic() + 3)
    assert time.monotonic() - started < 10
    grandchild = int(pids.read_text())
    wait_for(lambda: not alive(grandchild), timeout=60, message="the grandchild to be gone")


def test_no_time_left_means_the_command_never_starts(tmp_path: Path) -> None:
    with pytest.raises(DeadlineExceeded):
        run_command([PY, "-c", "open('started', 'w')"], cwd=tmp_path, log_path=tmp_path / "job.log",
                    deadline=time.monotonic() - 1)
    assert not (tmp_path / "started").exists()


def test_cancel_during_a_command_kills_its_tree(tmp_path: Path) -> None:
    """Cancelled (what the SIGTERM handler raises) interrupts the wait and kills every process."""
    pids = tmp_path / "pids"

    def cancel_when_tree_is_up(signum: int, frame: object) -> None:
        if pids.exists() and pids.read_text():
            raise Cancelled("test")

    previous = signal.signal(signal.SIGALRM, cancel_when_tree_is_up)
    signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
    try:
        with pytest.raises(Cancelled):
            run_command([PY, "-c", TREE, str(pids)], cwd=tmp_path, log_path=tmp_path / "job.log",
                        deadline=time.monotonic() + 60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    grandchild = int(pids.read_text())
    wait_for(lambda: not alive(grandchild), timeout=60, message="the grandchild to be gone")
    assert not [p for p in os.listdir("/proc") if p.isdigit() and alive(int(p)) and
                _cmdline(int(p)).endswith(str(pids))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_command_must_be_a_list_of_strings(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        run_command(f"{PY} -c pass", cwd=tmp_path, log_path=tmp_path / "job.log",  # type: ignore[arg-type]
                    deadline=time.monotonic() + 10)


@pytest.mark.parametrize(("code", "error_class"), [(0, None), (1, "usage"), (2, "usage"), (3, "system"),
                                                   (137, "system"), (255, "system")])
def test_exit_code_rule(code: int, error_class: str | None) -> None:
    assert error_class_for_exit(code) == error_class


def test_signal_exit_codes_read_like_a_shell() -> None:
    assert exit_code_of(-9) == 137
    assert exit_code_of(4) == 4
