"""Compares two glioedge result folders number by number (x86_64 vs aarch64).

Usage: python3 compare_results.py DIR_A DIR_B   (each holding <case-id>/result.json, features.csv)
Exit 1 when any number differs by more than 1e-5 relative (1e-9 absolute near zero)."""
import csv, json, math, pathlib, sys

TOL = 1e-5

def numbers(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "timings":
                continue
            yield from numbers(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from numbers(v, f"{path}[{i}]")
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield path, float(x)

def load(root):
    case = next(p for p in pathlib.Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    res = dict(numbers(json.loads((case / "result.json").read_text())))
    with open(case / "features.csv") as f:
        for row in csv.DictReader(f):
            res["features." + row["feature"]] = float(row["value"]) if row["value"] else math.nan
    return res

a, b = load(sys.argv[1]), load(sys.argv[2])
if set(a) != set(b):
    print("different fields:", sorted(set(a) ^ set(b))[:20])
    sys.exit(1)
worst = max(((abs(a[k] - b[k]) / max(abs(a[k]), 1e-300) if abs(a[k]) > 1e-9 else abs(a[k] - b[k]), k) for k in a
             if not (math.isnan(a[k]) and math.isnan(b[k]))), default=(0.0, "-"))
print(f"compared {len(a)} numbers; largest difference {worst[0]:.3e} at {worst[1]} ({a[worst[1]]!r} vs {b[worst[1]]!r})")
sys.exit(0 if worst[0] <= TOL else 1)
