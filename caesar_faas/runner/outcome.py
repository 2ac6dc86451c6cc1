"""How a job ended: its state, exit code and error class, and the result.json a backend reads.

Exit codes and error classes (one rule for every finder, so the store and the user see the same):
  0    SUCCESS
  1, 2 FAILURE "usage": the finder rejected the input or options (what argparse-style tools and
       our own checks return for bad input); retrying the same job cannot help
  2    also the runner's own refusals (no beam, not a FITS image, input file gone)
  124  TIMED-OUT "timeout" (the convention of coreutils `timeout`)
  143  cancelled by SIGTERM (128 + 15): no final event, the dispatcher already marked it ABORTED
  70   the runner itself failed (storage, a crash; EX_SOFTWARE) -> FAILURE "system"
  any other code, or a finder killed by a signal (128 + signal) -> FAILURE "system"
"""

from __future__ import annotations

import json
import os
import resource
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..jobs.states import FAILURE, SUCCESS, SYSTEM, TIMED_OUT, TIMEOUT, USAGE
from .contract import RESULT_FILE

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SYSTEM = 70
EXIT_TIMEOUT = 124
EXIT_CANCELLED = 143


def error_class_for_exit(code: int) -> str | None:
    """The error class of a finder's exit code (rule in the module docstring)."""
    if code == EXIT_OK:
        return None
    if code in (1, 2):
        return USAGE
    return SYSTEM


def exit_code_of(returncode: int) -> int:
    """Popen's returncode as a shell would report it: a signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class Outcome:
    state: str
    exit_code: int
    error_class: str | None
    message: str
    elapsed: float = 0.0
    products: list[str] = field(default_factory=list)

    @classmethod
    def success(cls) -> Outcome:
        return cls(SUCCESS, EXIT_OK, None, "source finding finished")

    @classmethod
    def usage(cls, message: str, exit_code: int = EXIT_USAGE) -> Outcome:
        return cls(FAILURE, exit_code, USAGE, message)

    @classmethod
    def system(cls, message: str, exit_code: int = EXIT_SYSTEM) -> Outcome:
        return cls(FAILURE, exit_code, SYSTEM, message)

    @classmethod
    def timeout(cls, message: str) -> Outcome:
        return cls(TIMED_OUT, EXIT_TIMEOUT, TIMEOUT, message)

    @classmethod
    def finder_exit(cls, code: int, what: str) -> Outcome:
        error_class = error_class_for_exit(code)
        if error_class == USAGE:
            return cls.usage(f"{what} rejected the input or options (exit code {code}); see job.log", code)
        return cls.system(f"{what} failed (exit code {code}); see job.log", code)

    def finished_data(self) -> dict[str, Any]:
        """The 'finished' fields of the status event contract (contract.py)."""
        data = asdict(self)
        data["elapsed"] = round(self.elapsed, 3)
        data["cpu_seconds"] = cpu_seconds()
        return data


def cpu_seconds() -> float:
    """CPU time of the runner and the finder processes it waited for (accounting)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 3)


def write_result(workdir: Path, data: dict[str, Any]) -> Path:
    """result.json, written atomically so a backend polling it never reads half a file."""
    path = workdir / RESULT_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, indent=1))
    os.replace(tmp, path)
    return path
