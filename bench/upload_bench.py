#!/usr/bin/env python3
"""Upload benchmark (issue 7): one file through the presigned flow and through the inline route,
against the real local stack (`python -m caesar_faas.local`), in file:// and/or s3:// (moto) mode.

    .venv/bin/python bench/upload_bench.py --size 2G --mode both

Prints, per mode: presigned throughput, time from completion until the file is listed as ready
(through the storage-event path), download sha256 check, inline-route throughput, a baseline
(s3: a plain boto3 upload_file of the same file to the same bucket, with the same part size and
with boto3's defaults; file: a plain file copy on the same disk) and the gateway process's peak
RSS during each upload (VmHWM, reset between phases).
In file mode, cp, the inline route and the presigned flow then run interleaved --repeat times
(issue 11), twice: with each output removed after its run, then with every output kept (see
file_ratios): MiB/s min/median/max and each median's ratio to cp.
Exits 1 when a target of the issue is missed: gateway peak RSS < 200 MB, listed within 2 s,
same sha256, presigned throughput >= 80% of boto3's at the same part size (s3 mode), inline and
presigned file:// at least 0.5x cp.
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from caesar_client.transport import Transport  # noqa: E402
from caesar_client.uploads import upload_presigned  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from benchlib import Stack, free_port, report, wait_until  # noqa: E402

MIB = 1024 * 1024
RSS_LIMIT = 200 * 1000 * 1000
BLOCK = 4 * MIB


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": MIB, "G": 1024 * MIB}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def make_fits(path: Path, size: int) -> str:
    """A valid FITS image (float32, 4096 columns) of about `size` bytes; its sha256."""
    columns = 4096
    rows = max(1, (size - 2880) // (4 * columns))
    cards = [f"{'SIMPLE':<8}= {'T':>20}", f"{'BITPIX':<8}= {-32:>20}", f"{'NAXIS':<8}= {2:>20}",
             f"{'NAXIS1':<8}= {columns:>20}", f"{'NAXIS2':<8}= {rows:>20}", "END"]
    header = "".join(c.ljust(80) for c in cards).ljust(2880).encode("ascii")
    data_size = rows * columns * 4
    digest = hashlib.sha256(header)
    block = os.urandom(BLOCK)
    with open(path, "wb") as fh:
        fh.write(header)
        left = data_size
        while left:
            piece = block[:min(BLOCK, left)]
            fh.write(piece)
            digest.update(piece)
            left -= len(piece)
        pad = b"\0" * (-(len(header) + data_size) % 2880)
        fh.write(pad)
        digest.update(pad)
    return digest.hexdigest()


class InlineBody:
    """multipart/form-data with one file field, streamed from disk (never the whole body in memory)."""

    def __init__(self, path: Path, name: str) -> None:
        self.boundary = uuid.uuid4().hex
        self.head = (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n").encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = path.stat().st_size
        self.fh = open(path, "rb")  # noqa: SIM115 - closed after the request
        self.pending = self.head
        self.left = len(self.head) + self.size + len(self.tail)

    def __len__(self) -> int:
        return self.left

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else n
        out = self.pending[:n]
        self.pending = self.pending[n:]
        if len(out) < n and self.fh:
            out += self.fh.read(n - len(out))
            if len(out) < n:
                self.fh.close()
                self.fh = None
                self.pending = self.tail
                out += self.pending[:n - len(out)]
                self.pending = self.pending[n - len(out):]
        self.left -= len(out)
        return out


class Moto:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = Path(sys.executable).parent / "moto_server"
        self.proc = subprocess.Popen([str(binary if binary.exists() else "moto_server"), "-H", "127.0.0.1", "-p",
                                      str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: requests.get(self.url, timeout=1).status_code < 500, 60, "moto_server")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def mbps(size: int, seconds: float) -> float:
    return size / MIB / max(seconds, 1e-9)


def s3_baselines(endpoint: str, bucket: str, image: Path, upload_s: float, part_size: int) -> list[str]:
    """Plain boto3 upload_file of the same file to the same bucket: with the same part size as the
    presigned flow (the target), and with boto3's default 8 MiB parts (for information: moto's
    completion slows down with large parts, for boto3 as much as for the presigned flow)."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    size = image.stat().st_size
    client = boto3.client("s3", endpoint_url=endpoint)
    missed = []
    for label, config in [(f"same {part_size / MIB:,.0f} MiB parts", TransferConfig(multipart_chunksize=part_size)),
                          ("boto3 defaults, 8 MiB parts", TransferConfig())]:
        t0 = time.monotonic()
        client.upload_file(str(image), bucket, f"baseline/{uuid.uuid4().hex}", Config=config)
        base_s = time.monotonic() - t0
        ratio = base_s / upload_s
        print(f"[s3] baseline (plain boto3 upload_file, {label}): {base_s:,.2f} s, {mbps(size, base_s):,.1f} MiB/s; "
              f"presigned flow at {ratio * 100:,.0f}% of it")
        if config.multipart_chunksize == part_size and ratio < 0.8:
            missed.append(f"s3: presigned throughput {ratio * 100:.0f}% of plain boto3 with the same part size "
                          "(< 80%)")
    return missed


def run_mode(mode: str, image: Path, digest: str, args: argparse.Namespace, work: Path) -> list[str]:
    """Run every phase in one mode; returns the targets missed."""
    size = image.stat().st_size
    moto = None
    extra = {"CAESAR_PART_SIZE": str(args.part_size), "CAESAR_MAX_INLINE_UPLOAD": str(args.inline_limit)}
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    if mode == "s3":
        import boto3

        moto = Moto()
        creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        os.environ.update(creds)
        boto3.client("s3", endpoint_url=moto.url).create_bucket(Bucket=bucket)
        extra.update(creds, CAESAR_STORAGE_URL=f"s3://{bucket}?endpoint_url={moto.url}&region=us-east-1")
    stack = Stack(work / f"home-{mode}", extra)
    missed: list[str] = []
    try:
        gw = stack.gateway
        exact_peak = gw.reset_peak()
        print(f"[{mode}] gateway pid {gw.pid}; file {size / MIB:,.0f} MiB; part size {args.part_size / MIB:,.0f} MiB"
              + ("" if exact_peak else " (peak RSS includes start-up: clear_refs not permitted)"))

        started = time.monotonic()
        record = upload_presigned(Transport(stack.url, stack.token), image, tag="bench", progress=not args.quiet,
                                  workers=args.workers, checksums=not args.no_checksums)
        completed = time.monotonic()
        upload_s = completed - started
        peak = gw.peak_rss()
        file_id = record["uuid"]

        def listed() -> bool:
            files = stack.session.get(f"{stack.url}/function/files", timeout=10).json().get("files", [])
            return any(f["uuid"] == file_id and f.get("state") == "ready" for f in files)

        wait_until(listed, 60, "the upload to be listed")
        listed_s = time.monotonic() - completed
        print(f"[{mode}] presigned: {upload_s:,.2f} s, {mbps(size, upload_s):,.1f} MiB/s; listed as ready "
              f"{listed_s:,.2f} s after completion; gateway peak RSS {peak / 1e6:,.0f} MB")
        if peak >= RSS_LIMIT:
            missed.append(f"{mode}: gateway peak RSS {peak / 1e6:,.0f} MB >= 200 MB during the presigned upload")
        if listed_s > 2.0:
            missed.append(f"{mode}: listed {listed_s:.2f} s after completion (> 2 s)")

        got = hashlib.sha256()
        t0 = time.monotonic()
        with stack.session.get(f"{stack.url}/function/files/{file_id}/content", stream=True, timeout=600) as answer:
            answer.raise_for_status()
            for block in answer.iter_content(BLOCK):
                got.update(block)
        down_s = time.monotonic() - t0
        same = got.hexdigest() == digest
        print(f"[{mode}] download: {down_s:,.2f} s, {mbps(size, down_s):,.1f} MiB/s, sha256 "
              f"{'matches' if same else 'DIFFERS'}")
        if not same:
            missed.append(f"{mode}: downloaded sha256 differs")

        if size <= args.inline_limit:
            gw.reset_peak()
            body = InlineBody(image, "inline.fits")
            t0 = time.monotonic()
            answer = stack.session.post(f"{stack.url}/function/upload", data=body, timeout=3600,
                                        headers={"Content-Type": f"multipart/form-data; boundary={body.boundary}"})
            inline_s = time.monotonic() - t0
            print(f"[{mode}] inline route: HTTP {answer.status_code}, {inline_s:,.2f} s, "
                  f"{mbps(size, inline_s):,.1f} MiB/s; gateway peak RSS {gw.peak_rss() / 1e6:,.0f} MB")
        else:
            print(f"[{mode}] inline route: skipped, the file is above the inline limit "
                  f"({args.inline_limit / MIB:,.0f} MiB; --inline-limit to change)")

        if mode == "s3":
            missed += s3_baselines(moto.url, bucket, image, upload_s, args.part_size)
        else:
            # removed first: the kept phase leaves GBs in the page cache, which slows what follows
            if reporting := page_reporting():
                print(f"[file] {reporting}")
            missed += file_ratios(stack, image, args, keep=False) + file_ratios(stack, image, args, keep=True)
    finally:
        stack.stop()
        if moto:
            moto.stop()
    return missed


def page_reporting() -> str | None:
    """A note when this machine is a VM that hands the memory its guest frees back to the host
    (free page reporting, virtio-balloon): touching such memory again costs a host fault, which
    is what the kept phase below mostly measures (first touch 0.3-1.2 GiB/s here, ~20 GiB/s
    rewritten)."""
    try:
        reported = int(Path("/sys/module/page_reporting/parameters/reported_kib").read_text())
    except (OSError, ValueError):
        return None
    return (f"free page reporting is on ({reported / 2**20:,.0f} GiB handed back to the host so far): new "
            "pages may cost a host fault each, so the kept phase's figures depend on what ran before")


def file_ratios(stack: Stack, image: Path, args: argparse.Namespace, *, keep: bool) -> list[str]:
    """cp to the same disk, the inline route and the presigned flow, interleaved `repeat` times:
    throughput min/median/max and the ratios of medians to cp (targets: both >= 0.5).

    keep: every output stays, as in a store: each cp writes a new file, as each upload does;
    else each run's output is removed after it was timed, so every run writes into pages just
    freed. Both are printed because on a VM with free page reporting (page_reporting) a new
    200 MiB file costs 45 ms in pages just freed and 170-700 ms in pages handed back to the
    host: removed, cp is one kernel memcpy and the uploads are bound by their hashing and
    copies; kept, every step may pay host faults, cp and uploads alike (docs/performance.md)."""
    size = image.stat().st_size
    runs: dict[str, list[float]] = {"cp (same disk)": [], "inline route": [], "presigned": []}
    copies = itertools.count()

    def cp() -> Callable[[], None]:
        target = stack.home / "objects" / f"baseline-copy-{next(copies)}"
        shutil.copyfile(image, target)  # no fsync: the storage's own writes do not sync either
        return lambda: target.unlink()

    def inline() -> Callable[[], None]:
        # http.client with 1 MiB blocks, like curl -F: requests sends a file-like body in 8 KiB
        # reads, and then the client, not the service, sets the pace.
        body = InlineBody(image, "inline.fits")
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=3600, blocksize=MIB)
        try:
            conn.request("POST", "/function/upload", body=body, headers={
                "Content-Type": f"multipart/form-data; boundary={body.boundary}", "Content-Length": str(len(body)),
                "Authorization": f"Bearer {stack.token}"})
            answer = conn.getresponse()
            text = answer.read()
        finally:
            conn.close()
        if answer.status != 201:
            raise SystemExit(f"inline upload: HTTP {answer.status} {text[:200]!r}")
        return lambda: remove(json.loads(text)["uuid"])

    def presigned() -> Callable[[], None]:
        record = upload_presigned(Transport(stack.url, stack.token), image, tag="bench", progress=False,
                                  workers=args.workers, checksums=not args.no_checksums)
        return lambda: remove(record["uuid"])

    def remove(file_id: str) -> None:
        url = f"{stack.url}/function/files/{file_id}"
        # the presigned file is registered on its storage event: delete it once it is
        wait_until(lambda: stack.session.get(url, timeout=10).json().get("state") == "ready", 60, "the upload")
        stack.session.delete(url, timeout=60).raise_for_status()

    steps = {"cp (same disk)": cp, "inline route": inline, "presigned": presigned}
    if size > args.inline_limit:
        del steps["inline route"], runs["inline route"]
    for _ in range(args.repeat):
        for name, step in steps.items():
            t0 = time.monotonic()
            cleanup = step()
            runs[name].append(size / MIB / (time.monotonic() - t0))
            if not keep:
                cleanup()
    base = statistics.median(runs["cp (same disk)"])
    missed = []
    kept = "outputs kept" if keep else "each output removed after its run"
    print(f"[file] {args.repeat} interleaved runs ({kept}), MiB/s min/median/max and the median's ratio to cp:")
    for name, rates in runs.items():
        ratio = statistics.median(rates) / base
        verdict = "" if name.startswith("cp") else f">= 0.5 {'ok' if ratio >= 0.5 else 'MISSED'}"
        print(f"[file]   {name:15} {min(rates):8.1f} {statistics.median(rates):8.1f} {max(rates):8.1f}   "
              f"{ratio:5.2f}  {verdict}")
        if verdict.endswith("MISSED"):
            missed.append(f"file ({kept}): {name} at {ratio:.2f}x cp (< 0.5)")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description="presigned vs inline upload benchmark")
    parser.add_argument("--size", default="2G", help="file size, e.g. 512M, 2G (default 2G)")
    parser.add_argument("--mode", choices=["file", "s3", "both"], default="both")
    parser.add_argument("--part-size", default="64M", help="CAESAR_PART_SIZE for the stack (default 64M)")
    parser.add_argument("--workers", type=int, default=4, help="parts sent in parallel by the client")
    parser.add_argument("--inline-limit", default="256M", help="CAESAR_MAX_INLINE_UPLOAD for the stack")
    parser.add_argument("--dir", help="work folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of cp / inline / presigned (file)")
    parser.add_argument("--no-checksums", action="store_true",
                        help="upload without part CRC32s and sha256 (to measure what they cost)")
    args = parser.parse_args()
    args.part_size = parse_size(args.part_size)
    args.inline_limit = parse_size(args.inline_limit)
    size = parse_size(args.size)

    work = Path(args.dir or tempfile.mkdtemp(prefix="caesar-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        image = work / "bench.fits"
        digest = make_fits(image, size)
        missed: list[str] = []
        for mode in (["file", "s3"] if args.mode == "both" else [args.mode]):
            missed += run_mode(mode, image, digest, args, work)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    return report(missed)


if __name__ == "__main__":
    sys.exit(main())
