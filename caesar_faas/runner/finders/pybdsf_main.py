"""Run PyBDSF from an argument file (written by the pybdsf adapter) and write its catalogue.

Usage: python -P pybdsf_main.py <args.json>
args: {"image", "process": {bdsf.process_image keyword arguments}, "catalog_type",
       "catalog": output FITS path, "result": output JSON path,
       "maps": {export_image img_type: output FITS path} (optional)}
Standalone on purpose (imports only bdsf): see argsfile.py.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: pybdsf_main.py <args.json>", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        args = json.load(fh)
    import bdsf  # late: a usage error above should not pay for the import

    kwargs = dict(args["process"])
    for key in ("beam", "rms_box"):  # PyBDSF wants tuples, JSON gives lists
        if kwargs.get(key) is not None:
            kwargs[key] = tuple(kwargs[key])
    img = bdsf.process_image(args["image"], **kwargs)
    nsrc = int(getattr(img, "nsrc", 0) or 0)
    ngaus = int(getattr(img, "ngaus", 0) or 0)
    rows = nsrc if args["catalog_type"] == "srl" else ngaus
    if rows > 0:
        img.write_catalog(outfile=args["catalog"], format="fits", catalog_type=args["catalog_type"],
                          clobber=True)
    for img_type, path in (args.get("maps") or {}).items():
        try:  # a map PyBDSF did not make (e.g. no rms map with rms_map=False) is not an error
            img.export_image(outfile=path, img_type=img_type, clobber=True)
        except Exception as exc:  # noqa: BLE001
            print(f"pybdsf: no {img_type} map ({type(exc).__name__}: {exc})")
    with open(args["result"], "w") as fh:
        json.dump({"nsources": nsrc, "ngaussians": ngaus, "rows": rows}, fh)
    print(f"pybdsf: {nsrc} sources, {ngaus} gaussians")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
