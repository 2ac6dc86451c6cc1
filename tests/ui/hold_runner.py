"""The runner of the web page tests' stack: the real runner, except for inputs named hold*.fits,
which get the contract-following fake runner (tests/fixtures/fake_runner.py) so that a job stays
RUNNING until the test cancels it (a real finder on a small image ends before a click can land).

Started by the local backend as `python -m tests.ui.hold_runner` (CAESAR_RUNNER_MODULE)."""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    job = json.loads(os.environ.get("CAESAR_JOB") or "{}")
    filename = str((job.get("input") or {}).get("filename", ""))
    if filename.startswith("hold"):
        from tests.fixtures.fake_runner import main as held
        return held()
    from caesar_faas.runner.main import main as real
    return real()


if __name__ == "__main__":
    sys.exit(main())
