"""Run BANE with a shared-memory name chosen by the caller.

Usage: python -P bane_main.py <memory-id> <BANE arguments...>

BANE (AegeanTools 2.3.5) keeps its background and noise maps in two POSIX shared-memory
segments, /dev/shm/ibkg_<id> and /dev/shm/irms_<id>, with a random id, even on one core. When a
job is cancelled with SIGKILL to its process group, nothing unlinks them and they stay in
/dev/shm (2 x 8 bytes per pixel) until reboot. Fixing the id per job (derived from its work
folder) lets the aegean adapter's cleanup() remove them afterwards. Standalone on purpose
(imports only AegeanTools): see argsfile.py.
"""

from __future__ import annotations

import sys
import uuid


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print("usage: bane_main.py <memory-id> <BANE arguments...>", file=sys.stderr)
        return 2
    fixed = uuid.UUID(argv[0])
    from AegeanTools import BANE
    from AegeanTools.CLI import BANE as cli

    class _FixedUUID:
        @staticmethod
        def uuid4() -> uuid.UUID:
            return fixed

    # BANE draws the segment name from uuid.uuid4() at each call; its pool workers are forked,
    # so they see the same module and the same name.
    BANE.uuid = _FixedUUID
    sys.argv = ["BANE", *argv[1:]]
    return int(cli.main() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
