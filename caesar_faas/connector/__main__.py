"""python -m caesar_faas.connector [--stack stack.yml]"""

from __future__ import annotations

import argparse
import asyncio
import signal

from ..config import load_settings
from ..local.stack import load_stack
from ..logs import configure
from .service import Connector


def main() -> None:
    parser = argparse.ArgumentParser(description="JetStream -> function connector")
    parser.add_argument("--stack", default=None, help="stack.yml with the bindings (topic annotations)")
    args = parser.parse_args()
    configure("connector")
    stack = load_stack(args.stack)
    connector = Connector(load_settings(), stack.bindings())

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, connector.stopping.set)
        await connector.run()

    asyncio.run(run())


if __name__ == "__main__":
    main()
