#!/usr/bin/env python3
"""Radiomics speed, glioedge vs PyRadiomics, interleaved in one run (not in CI).

    python tests/peers/bench_radiomics.py --glioedge target/release/glioedge [--rounds 3]

For each settings file embedded in the BraTS PyRadiomics references (default; resampled +
wavelet + LoG) it alternates PyRadiomics' `RadiomicsFeatureExtractor.execute` (in a fresh
process, file reading included) and `glioedge features --json` on the same image, mask and
settings, and prints the medians and the ratio, with the load average (peak RSS: run
`/usr/bin/time -v` on the glioedge command).
Needs the peers venv (tests/peers/requirements.txt).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PY_RUN = r"""
import sys, logging
import radiomics
from radiomics import featureextractor
radiomics.logger.setLevel(logging.ERROR)
ex = featureextractor.RadiomicsFeatureExtractor(sys.argv[3])
r = ex.execute(sys.argv[1], sys.argv[2])
print(sum(1 for k in r if not k.startswith("diagnostics_")))
"""


def timed(cmd):
    """Wall time and standard output of one child process."""
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--glioedge", required=True)
    ap.add_argument("--data", default=os.environ.get("GLIOEDGE_TEST_DATA", "../shared/data"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ref = os.path.join(args.data, "reference")
    for name in ["default", "resampled_wavelet_log"]:
        meta = json.load(open(os.path.join(ref, f"pyradiomics_brats_t1c_union_{name}.json")))
        image = os.path.join(args.data, meta["image"]["source_path"])
        mask = os.path.join(args.data, meta["mask"]["source_path"])
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(meta["settings_yaml"])
            params = f.name
        py, ge = [], []
        for _ in range(args.rounds):
            w, out = timed([sys.executable, "-c", PY_RUN, image, mask, params])
            py.append(w)
            n_py = int(out.strip())
            w, out = timed([args.glioedge, "features", "--image", image, "--mask", mask,
                               "--params", params, "--json"])
            ge.append(w)
            n_ge = len(json.loads(out)["features"])
        os.unlink(params)
        mp, mg = statistics.median(py), statistics.median(ge)
        print(f"{name}: PyRadiomics {n_py} features, median {mp:.2f} s {[round(x, 2) for x in py]}"
              f" · glioedge {n_ge} features, median {mg:.3f} s {[round(x, 3) for x in ge]}"
              f" → {mp / mg:.1f}x  (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
