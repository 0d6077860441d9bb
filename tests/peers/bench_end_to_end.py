#!/usr/bin/env python3
"""End-to-end ratio: `glioedge run` vs tests/peers/reference_pipeline.py, same case, one session.

    python tests/peers/bench_end_to_end.py ../shared/data/brats_case \
        --glioedge target/release/glioedge [--rounds 3] [--threads 2] [--json]

Each round runs glioedge then the reference pipeline, as whole processes under
`/usr/bin/time -v` (wall time and peak RSS of the process as the kernel counts it), so the
two are interleaved and see the same machine load; the load average is recorded before and
after. The reference runs the precision glioedge chose (result.json `precision`), with
`--threads` ONNX Runtime threads (glioedge: `inference.threads`, default = cores).
After the rounds, the two `features.csv` are compared: radiomics features (relative
difference) and deep features (cosine per sequence), so the two did the same work.
"Per case" is one case with the model already loaded, as the service pays it: for glioedge,
`glioedge bench case --runs 3` in the same round (model loaded once, the case run three
times; the median of the stage times, writing the folder included), because `glioedge run`
loads the case and computes its radiomics while the model loads, so its own stage times
overlap the model load; for the reference, its stages other than model_load.
Never run in CI; run in the venv of tests/peers/requirements.txt.
"""
import argparse
import csv
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (wall s, max RSS MB, stdout)."""
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    h, mnt, s = wall.groups()
    secs = int(h or 0) * 3600 + int(mnt) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return secs, rss / 1024.0, p.stdout


def load_avg():
    return os.getloadavg()


def read_features(path):
    with open(path) as f:
        return {r["feature"]: float(r["value"]) for r in csv.DictReader(f) if r["value"] != ""}


def compare(ours, theirs):
    rad = [k for k in ours if not k.startswith("dl_") and k in theirs]
    missing = sorted(k for k in ours if not k.startswith("dl_") and k not in theirs)
    worst = (0.0, "")
    for k in rad:
        a, b = ours[k], theirs[k]
        d = abs(a - b) / max(abs(b), 1e-12) if abs(b) > 1e-9 else abs(a - b)
        worst = max(worst, (d, k))
    within = sum(1 for k in rad if abs(ours[k] - theirs[k]) <= 1e-4 * max(abs(theirs[k]), 1e-6)
                 + 1e-9)
    cos = {}
    seqs = sorted({k.split("_")[1] for k in ours if k.startswith("dl_")})
    for s in seqs:
        keys = sorted(k for k in ours if k.startswith(f"dl_{s}_"))
        a = [ours[k] for k in keys]
        b = [theirs.get(k, 0.0) for k in keys]
        dot = sum(x * y for x, y in zip(a, b))
        cos[s] = dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return {"radiomics_compared": len(rad), "radiomics_within_1e-4_rel": within,
            "radiomics_missing_in_reference": missing,
            "radiomics_worst_rel_diff": worst[0], "radiomics_worst_feature": worst[1],
            "deep_cosine": cos}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case_dir", type=Path)
    ap.add_argument("--glioedge", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--radiomics-jobs", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="glioedge-e2e-"))
    env = dict(os.environ, GLIOEDGE_LOG="warn")
    load_before = load_avg()
    g_runs, r_runs = [], []
    g_case, r_case = [], []  # one case with the model loaded (what the service pays per case)
    precision = None
    for i in range(args.rounds):
        g_out = tmp / f"g{i}"
        g_runs.append(timed([args.glioedge, "run", str(args.case_dir), "--out", str(g_out)],
                            env)[:2])
        res = json.loads((g_out / args.case_dir.name / "result.json").read_text())
        if precision is None:
            precision = res["precision"]
            g_timings = res["timings"]
        bench = subprocess.run([args.glioedge, "bench", "case", str(args.case_dir),
                                "--runs", "3", "--json"], capture_output=True, text=True,
                               env=env, check=True)
        b = json.loads(bench.stdout)
        g_case.append(b["case_median_ms"] / 1e3)
        if i == 0:
            g_case_stages = b["stages"]
        r_out = tmp / f"r{i}"
        s, rss, out = timed([sys.executable, str(HERE / "reference_pipeline.py"),
                             str(args.case_dir), "--out", str(r_out), "--precision", precision,
                             "--threads", str(args.threads),
                             "--radiomics-jobs", str(args.radiomics_jobs), "--json"])
        r_runs.append((s, rss))
        rt = json.loads(out)
        r_case.append(sum(t["ms"] for t in rt["timings"] if t["stage"] != "model_load") / 1e3)
        if i == 0:
            r_timings = rt["timings"]
        print(f"round {i + 1}: glioedge {g_runs[-1][0]:.2f} s {g_runs[-1][1]:.0f} MB · "
              f"reference {s:.2f} s {rss:.0f} MB · load {load_avg()[0]:.2f}", file=sys.stderr)
    load_after = load_avg()
    g_wall = statistics.median(w for w, _ in g_runs)
    r_wall = statistics.median(w for w, _ in r_runs)
    cmp_ = compare(read_features(tmp / "g0" / args.case_dir.name / "features.csv"),
                   read_features(tmp / "r0" / args.case_dir.name / "features.csv"))
    report = {
        "case": args.case_dir.name, "rounds": args.rounds, "precision": precision,
        "threads": args.threads, "radiomics_jobs": args.radiomics_jobs,
        "load_avg_before": load_before, "load_avg_after": load_after,
        "glioedge_wall_s": [w for w, _ in g_runs], "reference_wall_s": [w for w, _ in r_runs],
        "glioedge_median_s": g_wall, "reference_median_s": r_wall,
        "speedup": r_wall / g_wall,
        "glioedge_case_s": g_case, "reference_case_s": r_case,
        "case_speedup": statistics.median(r_case) / statistics.median(g_case),
        "glioedge_peak_rss_mb": max(r for _, r in g_runs),
        "reference_peak_rss_mb": max(r for _, r in r_runs),
        "glioedge_stages_ms_round1": g_timings, "reference_stages_ms_round1": r_timings,
        "glioedge_case_stages_round1": g_case_stages,
        "parity": cmp_,
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"case {report['case']}: {args.rounds} interleaved rounds, precision {precision}, "
          f"{args.threads} threads; load average {load_before[0]:.2f} → {load_after[0]:.2f}")
    print(f"{'':<20} {'median wall s':>14} {'peak RSS MB':>12}")
    print(f"{'glioedge run':<20} {g_wall:>14.2f} {report['glioedge_peak_rss_mb']:>12.0f}")
    print(f"{'reference (Python)':<20} {r_wall:>14.2f} {report['reference_peak_rss_mb']:>12.0f}")
    print(f"speed-up, whole process (model load included): {report['speedup']:.1f}x")
    print(f"per case with the model loaded: glioedge {statistics.median(g_case):.2f} s, "
          f"reference {statistics.median(r_case):.2f} s → {report['case_speedup']:.1f}x "
          "(glioedge: `bench case`, medians of 3 runs, writing included; reference: every "
          "stage but model_load)")
    print("stages, round 1 (ms): glioedge run " + ", ".join(
        f"{t['stage']} {t['ms']:.0f}" for t in g_timings) + " (load and radiomics run "
        "while the model loads)")
    print("                       glioedge bench case " + ", ".join(
        f"{t['stage']} {t['median_ms']:.0f}" for t in g_case_stages))
    print("                       reference " + ", ".join(
        f"{t['stage']} {t['ms']:.0f}" for t in r_timings))
    c = cmp_
    print(f"parity: radiomics {c['radiomics_within_1e-4_rel']}/{c['radiomics_compared']} within "
          f"1e-4 relative (worst {c['radiomics_worst_rel_diff']:.2e}, "
          f"{c['radiomics_worst_feature']}); deep features cosine " + ", ".join(
              f"{s} {v:.6f}" for s, v in c["deep_cosine"].items()))


if __name__ == "__main__":
    main()
