"""Recount the running totals from the records: `make rebuild-accounting`, or in an image
`python -m caesar_faas.store.rebuild`. For the first start after an upgrade from a version
without totals (the stores also do it by themselves once), and to repair totals a crash left
one write short (MongoDB). Reads CAESAR_DB_URL, else the SQLite file under CAESAR_HOME, like
every other part of the service; prints what it did as one JSON line."""

from __future__ import annotations

import json
import sys
import time

from ..config import load_settings
from . import open_store


def main(argv: list[str] | None = None) -> int:
    if argv:
        print("usage: python -m caesar_faas.store.rebuild  (CAESAR_DB_URL or CAESAR_HOME name the store)",
              file=sys.stderr)
        return 2
    url = load_settings().db_url
    store = open_store(url)
    begun = time.monotonic()
    count = store.rebuild_totals()
    scheme = url.split(":", 1)[0]  # never the URL itself: a MongoDB URL carries a password
    print(json.dumps({"rebuilt": count, "store": scheme, "seconds": round(time.monotonic() - begun, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
