"""What the preview costs, side by side with the previous one and with the finder itself.

On a 4096x4096 synthetic image with about 1000 sources (tests/synth.py), in one run:
- a direct SEP run (the sep adapter's commands, as the runner starts them): the finder time that
  issue 11's target (submit -> SUCCESS within 1.3x of a direct SEP run) is measured against;
- the preview of caesar_faas/catalog/preview.py, and the preview as it was at a git revision
  (default f08dc3b, before issue 15: decimated, pyplot, no axes), each in a fresh interpreter
  (imports included, as in a runner process) and alternated, so both see the same machine load.

    .venv/bin/python bench/preview_bench.py [--size 4096] [--sources 1000] [--repeat 3] [--before f08dc3b]

Prints, per preview, the render time (reading the image to the written PNG) and the import
time of the module beyond what a runner has loaded anyway (astropy.io.fits, astropy.wcs,
numpy), the peak RSS of each preview process, and the ratios now/before and now/sep; exits 1
when the new render costs more than --max-ratio (default 0.35) of the SEP run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import importlib.util, json, sys, time
t0 = time.perf_counter()
source, image, rows_path, out = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("caesar_faas.catalog.preview_bench_subject", source)
module = importlib.util.module_from_spec(spec)
import astropy.io.fits, astropy.wcs, numpy  # what a runner has loaded before its products
t1 = time.perf_counter()
spec.loader.exec_module(module)
t2 = time.perf_counter()
rows = json.load(open(rows_path))
from pathlib import Path
kwargs = {"title": "bench"} if "title" in module.write_preview.__code__.co_varnames else {}
module.write_preview(Path(image), 0, rows, Path(out), **kwargs)
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the parent's peak.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
t3 = time.perf_counter()
print(json.dumps({"seconds": t3 - t0, "import": t2 - t1, "render": t3 - t2, "rss_mb": int(hwm) / 1024}))
"""


def run_sep(image: Path, workdir: Path) -> tuple[float, list[dict]]:
    from caesar_faas.apps.registry import get_app
    from caesar_faas.apps.validation import validate_options
    from caesar_faas.runner.contract import THREAD_ENV
    from caesar_faas.runner.finders import load_adapter

    options = validate_options(get_app("sep"), {})
    adapter = load_adapter("sep")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **THREAD_ENV, "HOME": str(workdir), "TMPDIR": str(workdir)}
    start = time.perf_counter()
    for argv in adapter.argv(str(image), options, str(workdir)):
        subprocess.run(argv, cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL)
    rows = adapter.read_catalog(str(workdir), str(image), options)
    return time.perf_counter() - start, rows


def preview_once(source: Path, image: Path, rows_path: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(source), str(image), str(rows_path), str(out)],
                          cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", default="f08dc3b", help="git revision of the previous preview")
    parser.add_argument("--max-ratio", type=float, default=0.35, help="new preview / SEP run limit")
    args = parser.parse_args()

    from tests.synth import make_image

    with tempfile.TemporaryDirectory(prefix="preview-bench-") as tmp:
        folder = Path(tmp)
        image = folder / "field.fits"
        t = time.perf_counter()
        make_image(str(image), size=args.size, n_sources=args.sources, seed=11, min_sep_beams=6.0)
        print(f"image {args.size}x{args.size}, {args.sources} sources made in {time.perf_counter() - t:.1f} s")
        before = folder / "preview_before.py"
        before.write_text(subprocess.run(["git", "show", f"{args.before}:caesar_faas/catalog/preview.py"], cwd=ROOT,
                                         check=True, capture_output=True, text=True).stdout)
        current = ROOT / "caesar_faas" / "catalog" / "preview.py"
        sep_times, new, old = [], [], []
        rows: list[dict] = []
        for i in range(args.repeat):
            seconds, rows = run_sep(image, folder / f"sep-{i}")
            sep_times.append(seconds)
            rows_path = folder / "rows.json"
            rows_path.write_text(json.dumps(rows))
            for subject, bucket in ((before, old), (current, new)) if i % 2 == 0 else ((current, new), (before, old)):
                bucket.append(preview_once(subject, image, rows_path, folder / f"{subject.stem}-{i}.png"))
        from matplotlib.image import imread

        shape = imread(folder / "preview-0.png").shape
        best = {name: {key: min(r[key] for r in runs) for key in ("seconds", "import", "render")}
                for name, runs in (("before", old), ("new", new))}
        sep = min(sep_times)
        print(f"sources found by sep: {len(rows)}; new preview {shape[1]}x{shape[0]} px")
        print(f"direct sep run:  {', '.join(f'{s:.2f}' for s in sep_times)} s (best {sep:.2f})")
        for name, runs in (("preview before", old), ("preview now", new)):
            parts = ", ".join(f"{r['render']:.2f}+{r['import']:.2f}" for r in runs)
            print(f"{name + ':':16} render+import {parts} s, peak RSS {max(r['rss_mb'] for r in runs):.0f} MB")
        ratio = best["new"]["render"] / best["before"]["render"]
        print(f"render now/before: {ratio:.2f}; import now/before: "
              f"{best['new']['import'] / best['before']['import']:.2f}")
        print(f"render now/sep:    {best['new']['render'] / sep:.2f} (before/sep: {best['before']['render'] / sep:.2f})")
        ok = best["new"]["render"] / sep <= args.max_ratio and max(shape[:2]) <= 2048
        print("target met" if ok else f"target missed: the render above {args.max_ratio:.2f} of the sep run, "
              "or the PNG above 2048 px")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
