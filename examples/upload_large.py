#!/usr/bin/env python3
"""Upload a large image through the presigned flow (docs/large-uploads.md).

    python examples/upload_large.py image.fits --gateway http://127.0.0.1:8080 --token "$CAESAR_TOKEN" --wait

Prints the file record as JSON. With --wait it then polls the file until the storage event has
registered it (state ready or invalid).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import requests  # noqa: E402

from caesar_faas.uploads_client import UploadError, upload_large  # noqa: E402


def wait_registered(gateway: str, token: str | None, file_id: str, timeout: float) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(f"{gateway.rstrip('/')}/function/files/{file_id}", headers=headers, timeout=30)
        if answer.ok and answer.json().get("state") in ("ready", "invalid"):
            return answer.json()
        if time.monotonic() > deadline:
            raise SystemExit(f"file {file_id} not registered after {timeout:.0f}s (last: HTTP {answer.status_code})")
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="the file to upload")
    parser.add_argument("--gateway", default=os.environ.get("CAESAR_GATEWAY_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=os.environ.get("CAESAR_TOKEN"), help="bearer token (or $CAESAR_TOKEN)")
    parser.add_argument("--tag")
    parser.add_argument("--name", help="file name to register (default: the file's own)")
    parser.add_argument("--retries", type=int, default=3, help="extra attempts per part")
    parser.add_argument("--workers", type=int, default=4, help="parts sent in parallel")
    parser.add_argument("--part-size", type=int, help="bytes per part (default: the gateway's)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--wait", action="store_true", help="wait until the file is registered")
    parser.add_argument("--wait-timeout", type=float, default=120.0)
    args = parser.parse_args()
    try:
        record = upload_large(args.gateway, args.token, args.path, tag=args.tag, retries=args.retries,
                              progress=not args.no_progress, filename=args.name, workers=args.workers,
                              part_size=args.part_size)
    except UploadError as exc:
        print(f"upload failed: {exc}", file=sys.stderr)
        if exc.body:
            print(json.dumps(exc.body, indent=2) if isinstance(exc.body, dict) else exc.body, file=sys.stderr)
        return 1
    record.pop("parts", None)
    if args.wait:
        record = wait_registered(args.gateway, args.token, record["uuid"], args.wait_timeout)
    print(json.dumps(record, indent=2))
    return 0 if record.get("state") != "invalid" else 2


if __name__ == "__main__":
    sys.exit(main())
