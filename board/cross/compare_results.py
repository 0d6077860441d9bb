"""Compares two glioedge result folders number by number (x86_64 vs aarch64).

Usage: python3 compare_results.py DIR_A DIR_B   (each holding <case-id>/result.json, features.csv)

Every number of result.json (timings excepted) and every feature of features.csv must agree
within 1e-5 relative (1e-9 absolute where |value| < 1e-9). The deep features (`dl_<seq>_NNN`) are
fp32 network outputs: two correct CPUs sum their products in different orders, so a feature
that ends near zero after cancellation has no meaningful relative error of its own. They are
held to 1e-5 relative to the largest magnitude of their own sequence's feature vector (the
scale on which the rounding happens; numpy's `allclose` idea), and their plain per-number
largest relative difference is printed as well. Exit 1 when any number is out of tolerance."""
import csv, json, math, pathlib, re, sys

TOL = 1e-5
DL = re.compile(r"^features\.dl_(.+)_\d+$")

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

def rel(x, y, floor=1e-9):
    return abs(x - y) / abs(x) if abs(x) > floor else abs(x - y)

a, b = load(sys.argv[1]), load(sys.argv[2])
if set(a) != set(b):
    print("different fields:", sorted(set(a) ^ set(b))[:20])
    sys.exit(1)
both_nan = lambda k: math.isnan(a[k]) and math.isnan(b[k])
dl_scale = {}
for k in a:
    m = DL.match(k)
    if m and not math.isnan(a[k]):
        dl_scale[m.group(1)] = max(dl_scale.get(m.group(1), 0.0), abs(a[k]))
plain = [k for k in a if not DL.match(k) and not both_nan(k)]
deep = [k for k in a if DL.match(k) and not both_nan(k)]
status = 0
worst = max(((rel(a[k], b[k]), k) for k in plain), default=(0.0, "-"))
print(f"compared {len(plain)} numbers (probabilities, scores, points, SHAP, radiomics features); "
      f"largest relative difference {worst[0]:.3e} at {worst[1]} "
      f"({a.get(worst[1])!r} vs {b.get(worst[1])!r})")
status |= worst[0] > TOL
if deep:
    scaled = max(((abs(a[k] - b[k]) / dl_scale[DL.match(k).group(1)], k) for k in deep))
    per = max(((rel(a[k], b[k]), k) for k in deep))
    print(f"compared {len(deep)} deep features in {len(dl_scale)} sequences; largest difference "
          f"relative to the sequence's largest |feature| {scaled[0]:.3e} at {scaled[1]}; "
          f"largest per-number relative difference {per[0]:.3e} at {per[1]} "
          f"({a[per[1]]!r} vs {b[per[1]]!r})")
    status |= scaled[0] > TOL
print("within tolerance" if not status else f"OUT OF TOLERANCE (1e-5)")
sys.exit(status)
