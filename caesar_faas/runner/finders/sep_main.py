"""Run SEP from an argument file (written by the sep adapter) and write the raw measurements.

Usage: python -P sep_main.py <args.json>
args: {"image", "output": FITS table path, "params": {...}} (see the sep adapter).
Writes one row per detection, in pixel units (0-based positions, Jy/beam sums); the adapter's
read_catalog turns them into sky units. Standalone on purpose (imports only sep, numpy,
astropy): see argsfile.py.
"""

from __future__ import annotations

import json
import sys

COLUMNS = ("x", "y", "x_iso", "y_iso", "errx2", "erry2", "a", "b", "theta", "peak", "flux_auto",
           "flux_auto_err", "local_rms", "npix", "flag")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: sep_main.py <args.json>", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        args = json.load(fh)
    import numpy as np
    import sep
    from astropy.io import fits
    from astropy.table import Table

    p = args["params"]
    data = np.squeeze(fits.getdata(args["image"]))
    if data.ndim != 2:
        print(f"sep: expected a 2-D image, got shape {data.shape}", file=sys.stderr)
        return 2
    # SEP needs native byte order; FITS data are big-endian.
    data = np.ascontiguousarray(data, dtype=np.float64)
    mask = ~np.isfinite(data)  # blanked pixels (NaN) are common at mosaic edges
    data[mask] = 0.0

    bkg = sep.Background(data, mask=mask, bw=p["bkg_box"], bh=p["bkg_box"], fw=p["bkg_filter"],
                         fh=p["bkg_filter"], fthresh=p["bkg_fthresh"])
    sub = data - bkg.back()
    rms = bkg.rms()
    # Room for the pixels of every object of a large image (the default stack is 300k pixels).
    sep.set_extract_pixstack(max(300_000, data.size // 4))
    kernel = np.array(p["kernel"], dtype=np.float64) if p["kernel"] is not None else None
    objs = sep.extract(sub, p["thresh"], err=rms, mask=mask, minarea=p["minarea"],
                       filter_kernel=kernel, filter_type=p["filter_type"],
                       deblend_nthresh=p["deblend_nthresh"], deblend_cont=p["deblend_cont"],
                       clean=p["clean"], clean_param=p["clean_param"])
    n = len(objs)
    cols = {name: np.zeros(n) for name in COLUMNS}
    if n:
        x, y, a, b, theta = objs["x"], objs["y"], objs["a"], objs["b"], objs["theta"]
        # Windowed positions: a Gaussian window of the beam's size, as SExtractor's XWIN.
        xw, yw, wflag = sep.winpos(sub, x, y, np.full(n, p["win_sigma"]), mask=mask)
        bad = (wflag != 0) | ~np.isfinite(xw) | ~np.isfinite(yw)
        xw, yw = np.where(bad, x, xw), np.where(bad, y, yw)
        # Kron-aperture ("AUTO") flux, with a circular aperture for tiny objects (SEP recipe).
        kronrad, kflag = sep.kron_radius(sub, x, y, a, b, theta, 6.0, mask=mask)
        kronrad = np.where(np.isfinite(kronrad) & (kronrad > 0), kronrad, 1.0)
        flux, ferr, fflag = sep.sum_ellipse(sub, x, y, a, b, theta, p["kron_factor"] * kronrad,
                                            err=rms, mask=mask, subpix=1)
        small = kronrad * np.sqrt(a * b) < p["min_radius"]
        if np.any(small):
            cflux, cerr, cflag = sep.sum_circle(sub, x[small], y[small], p["min_radius"], err=rms,
                                                mask=mask, subpix=1)
            flux[small], ferr[small], fflag[small] = cflux, cerr, cflag
        iy = np.clip(np.rint(yw).astype(int), 0, data.shape[0] - 1)
        ix = np.clip(np.rint(xw).astype(int), 0, data.shape[1] - 1)
        cols.update({
            "x": xw, "y": yw, "x_iso": x, "y_iso": y, "errx2": objs["errx2"],
            "erry2": objs["erry2"], "a": a, "b": b, "theta": theta, "peak": objs["peak"],
            "flux_auto": flux, "flux_auto_err": ferr, "local_rms": rms[iy, ix],
            "npix": objs["npix"].astype(float), "flag": (objs["flag"] | kflag | fflag).astype(float),
        })
    Table({name: np.asarray(cols[name], dtype=np.float64) for name in COLUMNS}).write(
        args["output"], format="fits", overwrite=True)
    print(f"sep: {n} sources, global rms {bkg.globalrms:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
