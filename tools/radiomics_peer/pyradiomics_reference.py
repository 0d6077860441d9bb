#!/usr/bin/env python3
"""Run PyRadiomics on an image + mask with a parameter file and write a reference JSON in the
layout of shared/data/reference/pyradiomics_*.json; or compare two feature JSONs.

Needs numpy, SimpleITK, PyWavelets and PyRadiomics (3.1.0 for parity) in a venv outside the repo.
"""
import argparse
import hashlib
import json
import math
import sys
import time


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def plain(v):
    """numpy / SimpleITK values -> JSON values."""
    try:
        import numpy
        if isinstance(v, numpy.ndarray):
            return v.tolist()
        if isinstance(v, numpy.generic):
            return v.item()
    except ImportError:
        pass
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def make(args):
    import radiomics
    from radiomics import featureextractor

    with open(args.params) as f:
        yaml_text = f.read()
    extractor = featureextractor.RadiomicsFeatureExtractor(args.params)
    t0 = time.perf_counter()
    result = extractor.execute(args.image, args.mask)
    elapsed = time.perf_counter() - t0
    features = {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}
    diagnostics = {k: plain(v) for k, v in result.items() if k.startswith("diagnostics_")}
    out = {
        "image": {"file": args.image.split("/")[-1], "sha256": sha256(args.image), "source_path": args.image},
        "mask": {"file": args.mask.split("/")[-1], "sha256": sha256(args.mask), "source_path": args.mask},
        "pyradiomics_version": radiomics.__version__,
        "settings_yaml": yaml_text,
        "n_features": len(features),
        "features": features,
        "diagnostics": diagnostics,
        "timing": {"seconds": elapsed},
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"{len(features)} features in {elapsed:.2f} s -> {args.out}")


def compare(ref_path, ours_path, tol_original=1e-6, tol_other=1e-4):
    with open(ref_path) as f:
        ref = json.load(f)["features"]
    with open(ours_path) as f:
        ours = json.load(f)["features"]
    missing = sorted(set(ref) - set(ours))
    extra = sorted(set(ours) - set(ref))
    rows = []
    for k in sorted(set(ref) & set(ours)):
        w, g = ref[k], ours[k]
        err = abs(g - w) if abs(w) < 1e-9 else abs(g - w) / abs(w)
        lim = 1e-9 if abs(w) < 1e-9 else (tol_original if k.startswith("original_") else tol_other)
        rows.append((err / lim, k, w, g, err))
    rows.sort(reverse=True)
    for ratio, k, w, g, err in rows[:10]:
        print(f"{k:<60} ref {w!r:<24} ours {g!r:<24} err {err:.2e}")
    bad = [r for r in rows if r[0] > 1 or math.isnan(r[0])]
    print(f"{len(rows)} compared, {len(bad)} over tolerance, {len(missing)} missing, {len(extra)} extra")
    return 0 if not (bad or missing or extra) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--image")
    p.add_argument("--mask")
    p.add_argument("--params")
    p.add_argument("--out")
    p.add_argument("--compare", nargs=2, metavar=("REFERENCE", "OURS"))
    args = p.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    if not (args.image and args.mask and args.params and args.out):
        p.error("--image, --mask, --params and --out are required (or --compare A B)")
    make(args)


if __name__ == "__main__":
    main()
