#!/usr/bin/env python3
"""The Python peer of `glioedge run`: the same work on the same case with the same model files.

    python tests/peers/reference_pipeline.py CASE_DIR --out DIR [--package models/demo-convnext-tiny]
        [--precision f32|int8] [--threads 2] [--radiomics-jobs 1] [--json]

Only for measuring the end-to-end ratio (`tests/peers/bench_end_to_end.py`) and cross-checking
values; never run in CI. Needs a venv outside the repo with tests/peers/requirements.txt
(nibabel, PyRadiomics 3.1.0, SimpleITK, onnxruntime, onnx, zstandard, numpy).

Stages, as src/pipeline.rs names them:
  load       nibabel reads every sequence + the mask (sha256 of each file, as result.json
             lists them), checks they share one grid, replaces non-finite values by 0, the ROI
             is the union of the mask's labels (config default `case.mask_labels = any`).
  radiomics  PyRadiomics 3.1.0 `RadiomicsFeatureExtractor()` defaults (Original image, all 7
             families, binWidth 25, label 1) per sequence, on the nibabel arrays as float32
             (what glioedge computes on), geometry converted to ITK's LPS.
  inference  the package's slice policy exactly as src/inference does it: RAS canonical
             (nibabel), K axial slices with the largest ROI area, square crop around the ROI
             bounding box + margin, bilinear resize to 224 (zero outside), 2.5-D channels, z-score
             over brain voxels clipped and scaled; ONNX Runtime on the package's model
             (model.int8.onnx.zst decompressed with zstandard): `int8` = the stored QDQ graph,
             `f32` = int8 weights dequantized once and activation Q/DQ removed (the graph of
             models/tools/bench_ort.py, identical to glioedge's f32 path); features averaged
             per sequence (f64), the package's linear heads, analytic Grad-CAM per head placed
             back on the study grid.
  fusion     the demo package has no fitted heads/nomograms: every task "not assessable".
  report     ROI-outline and Grad-CAM overlays (PNG) on the largest-ROI axial slice,
             features.csv, result.json, a self-contained report.html; every file written to a
             temporary name and renamed.
"""
import argparse
import base64
import csv
import hashlib
import io
import json
import os
import struct
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "models" / "tools"))

# Same aliases as src/case (exact name first); the brats case uses t1c/t1n/t2f/t2w/segmentation.
ALIASES = {
    "t1c": ["t1c", "t1ce", "t1gd", "t1-contrast"],
    "t2": ["t2", "t2w"],
    "flair": ["flair", "t2f", "t2-flair"],
    "t1": ["t1", "t1n", "t1w"],
    "mask": ["mask", "seg", "segmentation", "label", "roi"],
}
TASKS = [("idh", "IDH mutation"), ("ki67", "Ki-67 level"),
         ("tp_psp", "True progression vs pseudoprogression")]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def discover(case_dir):
    files = {}
    names = sorted(os.listdir(case_dir))
    for role, aliases in ALIASES.items():
        for a in aliases:
            for ext in (".nii.gz", ".nii"):
                if a + ext in names:
                    files.setdefault(role, case_dir / (a + ext))
    if "mask" not in files or "t1c" not in files:
        raise SystemExit(f"{case_dir}: needs at least t1c and a mask")
    return files


def write_atomic(path, data):
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------- load

def load(case_dir):
    files = discover(case_dir)
    ref = nib.load(files["t1c"])
    images, inputs = {}, []
    for role, path in files.items():
        img = nib.load(path)
        if img.shape != ref.shape or not np.allclose(img.affine, ref.affine, atol=1e-4):
            raise SystemExit(f"{path.name}: not on the t1c grid (the reference pipeline does "
                             "not resample; glioedge would)")
        inputs.append({"role": role, "file": path.name, "sha256": sha256(path)})
        if role == "mask":
            labels = np.asarray(img.dataobj)
            continue
        data = np.asarray(img.get_fdata(dtype=np.float32))
        bad = ~np.isfinite(data)
        if bad.any():
            data = np.where(bad, np.float32(0), data)
        images[role] = data
    roi = labels != 0
    return {"affine": ref.affine, "zooms": ref.header.get_zooms()[:3], "images": images,
            "labels": labels, "roi": roi, "inputs": inputs, "id": case_dir.name}


# ----------------------------------------------------------------------------------- radiomics

def to_sitk(arr, affine):
    import SimpleITK as sitk
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    lps = np.diag([-1.0, -1.0, 1.0])
    direction = lps @ affine[:3, :3] / zooms
    img.SetSpacing([float(z) for z in zooms])
    img.SetOrigin([float(v) for v in lps @ affine[:3, 3]])
    img.SetDirection([float(v) for v in direction.ravel()])
    return img


def radiomics_one(args):
    seq, data, roi, affine = args
    import logging
    import radiomics
    from radiomics import featureextractor
    radiomics.setVerbosity(logging.ERROR)
    ext = featureextractor.RadiomicsFeatureExtractor()
    out = ext.execute(to_sitk(data, affine), to_sitk(roi.astype(np.uint8), affine), label=1)
    return {f"{seq}_{k}": float(v) for k, v in out.items() if not k.startswith("diagnostics_")}


def radiomics_of(study, jobs):
    work = [(seq, study["images"][seq], study["roi"], study["affine"])
            for seq in sorted(study["images"])]
    feats = {}
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            for r in pool.map(radiomics_one, work):
                feats.update(r)
    else:
        for w in work:
            feats.update(radiomics_one(w))
    return feats


# ----------------------------------------------------------------------------------- inference

def read_manifest(package):
    import tomllib
    with open(package / "manifest.toml", "rb") as f:
        return tomllib.load(f)


def session(package, precision, threads):
    import onnx
    import onnxruntime as ort
    import zstandard
    from bench_ort import fp32_graph
    raw = zstandard.ZstdDecompressor().decompress((package / "model.int8.onnx.zst").read_bytes())
    if precision == "f32":
        raw = fp32_graph(onnx.load_from_string(raw)).SerializeToString()
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    return ort.InferenceSession(raw, o, providers=["CPUExecutionProvider"])


def canonical(arr, affine):
    """nibabel's as_closest_canonical on an array, and the transform back."""
    ornt = nib.orientations.io_orientation(affine)
    can = nib.orientations.apply_orientation(arr, ornt)
    back = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"), ornt)
    return can, back


def slice_plan(roi, m):
    sp = m["slice_policy"]
    nz = np.nonzero(roi)
    lo = [int(a.min()) for a in nz]
    hi = [int(a.max()) + 1 for a in nz]
    areas = roi.sum(axis=(0, 1))
    order = sorted((k for k in range(roi.shape[2]) if areas[k] > 0), key=lambda k: (-areas[k], k))
    slices = sorted(order[: sp["slices"]])
    big = max(hi[0] - lo[0], hi[1] - lo[1])
    side = max(big * (1.0 + 2.0 * sp["margin"]), float(sp["min_crop_voxels"]))
    centre = ((lo[0] + hi[0]) / 2.0 - 0.5, (lo[1] + hi[1]) / 2.0 - 0.5)
    return slices, centre, side


def bilinear(plane, x, y):
    """plane[i, j] sampled at (x=i, y=j), zero outside, f64 weights (as src/inference)."""
    nx, ny = plane.shape
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    acc = np.zeros(np.broadcast(x, y).shape)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (yi >= 0) & (xi < nx) & (yi < ny)
            v = plane[np.clip(xi, 0, nx - 1), np.clip(yi, 0, ny - 1)].astype(np.float64)
            acc += np.where(ok, wx * wy * v, 0.0)
    return acc.astype(np.float32)


def build_inputs(img, slices, centre, side, m):
    n, ctx = m["input"]["size"], m["slice_policy"]["context"]
    norm = m["normalisation"]
    thr = norm["brain_threshold"]
    v64 = img.astype(np.float64)
    brain = v64 > thr
    mean = v64[brain].mean()
    sd = np.sqrt(((v64[brain] - mean) ** 2).mean())
    step = side / n
    uv = np.arange(n) + 0.5
    xi = centre[0] - side / 2.0 + uv * step              # along columns u
    yj = centre[1] + side / 2.0 - uv * step              # along rows v
    x, y = np.meshgrid(xi, yj)                           # [v, u]
    out = []
    for k in slices:
        chans = []
        for dk in range(-ctx, ctx + 1):
            kk = min(max(k + dk, 0), img.shape[2] - 1)
            s = v64[:, :, kk]
            z = np.where(s > thr, np.clip((s - mean) / sd, -norm["clip"], norm["clip"])
                         * norm["scale"], 0.0).astype(np.float32)
            chans.append(bilinear(z, x, y))
        out.append(np.stack(chans))
    return out


def heads_of(package, m):
    raw = json.loads((package / "heads.json").read_text())
    return [(h["name"], h["classes"], np.asarray(raw[h["name"]]["weights"], np.float32),
             np.asarray(raw[h["name"]]["bias"], np.float32)) for h in m.get("heads", [])]


def gradcam(fmap, norm, w_row):
    d, s, _ = fmap.shape
    f = fmap.reshape(d, s * s).astype(np.float64)
    x = f.mean(axis=1)
    mu = x.mean()
    sigma = np.sqrt(((x - mu) ** 2).mean() + norm["eps"])
    xh = (x - mu) / sigma
    g = w_row.astype(np.float64) * np.asarray(norm["weight"], np.float64)
    alpha = (g - g.mean() - xh * (g * xh).mean()) / sigma / (s * s)
    return np.maximum(alpha @ f, 0.0).reshape(s, s).astype(np.float32)


def place_cams(shape, slices, centre, side, maps):
    nx, ny, _ = shape
    vol = np.zeros(shape, np.float32)
    s = maps[0].shape[0]
    step = side / s
    x0 = centre[0] - side / 2.0
    ytop = centre[1] + side / 2.0
    lo_i, hi_i = int(np.floor(max(x0, 0.0))), min(int(max(np.ceil(x0 + side), 0.0)), nx)
    lo_j, hi_j = int(np.floor(max(ytop - side, 0.0))), min(int(max(np.ceil(ytop), 0.0)), ny)
    ii, jj = np.meshgrid(np.arange(lo_i, hi_i), np.arange(lo_j, hi_j), indexing="ij")
    u = (ii - x0) / step - 0.5
    v = (ytop - jj) / step - 0.5
    ok = (u >= -0.5) & (v >= -0.5) & (u <= s - 0.5) & (v <= s - 0.5)
    uc, vc = np.clip(u, 0, s - 1), np.clip(v, 0, s - 1)
    for cam, k in zip(maps, slices):
        # the map is row-major [v, u]; bilinear() indexes [x, y] = [u, v]
        vals = bilinear(cam.T, uc, vc)
        vol[lo_i:hi_i, lo_j:hi_j, k] = np.where(ok, vals, 0.0)
    mx = vol.max()
    return vol / mx if mx > 0 else vol


def inference_of(study, package, m, sess, precision):
    roi_can, back = canonical(study["roi"], study["affine"])
    slices, centre, side = slice_plan(roi_can, m)
    seqs, inputs = [], []
    for name in m["sequences"]:
        if name not in study["images"]:
            continue
        can, _ = canonical(study["images"][name], study["affine"])
        inputs += build_inputs(can, slices, centre, side, m)
        seqs.append(name)
    feats, fmaps = sess.run([m["outputs"]["features"], m["outputs"]["feature_map"]],
                            {m["input"]["name"]: np.stack(inputs)})
    norm = json.loads((package / "final_norm.json").read_text())
    heads = heads_of(package, m)
    k = len(slices)
    deep, cams, head_out = {}, {}, {}
    for si, seq in enumerate(seqs):
        f = feats[si * k:(si + 1) * k].astype(np.float64).mean(axis=0).astype(np.float32)
        for i, v in enumerate(f):
            deep[f"dl_{seq}_{i:03d}"] = float(v)
        for hi, (name, classes, w, b) in enumerate(heads):
            logits = w.astype(np.float64) @ f.astype(np.float64) + b
            head_out[f"{seq}/{name}"] = classes[int(np.argmax(logits))]
            cls = len(classes) - 1
            maps = [gradcam(fmaps[si * k + j], norm, w[cls]) for j in range(k)]
            vol = place_cams(roi_can.shape, slices, centre, side, maps)
            if hi == 0:
                cams[seq] = nib.orientations.apply_orientation(vol, back)
    return deep, cams, head_out


# -------------------------------------------------------------------------------------- report

def png(rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def overlay(image, roi, cam, k):
    sl = image[:, :, k].astype(np.float64)
    vals = sl[np.isfinite(sl) & (sl != 0)]
    lo, hi = (np.percentile(vals, [1, 99]) if vals.size else (0.0, 1.0))
    hi = hi if hi > lo else lo + 1.0
    g = np.clip((sl - lo) / (hi - lo), 0, 1)
    rgb = np.stack([g, g, g], axis=-1)
    if cam is not None and cam[:, :, k].max() > 0:
        t = cam[:, :, k] / cam[:, :, k].max()
        heat = np.stack([np.clip(1.5 - np.abs(4 * t - c), 0, 1) for c in (3, 2, 1)], axis=-1)
        a = np.where(t > 0.05, 0.45 * np.sqrt(t), 0.0)[..., None]
        rgb = rgb * (1 - a) + heat * a
    r = roi[:, :, k]
    edge = r & ~(np.roll(r, 1, 0) & np.roll(r, -1, 0) & np.roll(r, 1, 1) & np.roll(r, -1, 1))
    rgb[edge] = (1.0, 0.85, 0.0)
    # x = nx-1-i (patient right on the left), y = ny-1-j (anterior up)
    img = (rgb[::-1, ::-1].transpose(1, 0, 2) * 255 + 0.5).astype(np.uint8)
    return png(np.ascontiguousarray(img))


def report(study, feats, cams, precision, timings, out_dir, package, m):
    case = out_dir / study["id"]
    (case / "overlays").mkdir(parents=True, exist_ok=True)
    roi_can, _ = canonical(study["roi"], study["affine"])
    k = int(np.argmax(roi_can.sum(axis=(0, 1))))
    pictures = []
    for seq, img in sorted(study["images"].items()):
        can, _ = canonical(img, study["affine"])
        pictures.append((f"{seq}_roi.png", overlay(can, roi_can, None, k)))
        if seq in cams:
            cam, _ = canonical(cams[seq], study["affine"])
            pictures.append((f"{seq}_gradcam.png", overlay(can, roi_can, cam, k)))
    for name, data in pictures:
        write_atomic(case / "overlays" / name, data)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["feature", "value"])
    for name in sorted(feats):
        w.writerow([name, repr(feats[name])])
    write_atomic(case / "features.csv", buf.getvalue().encode())
    zooms = study["zooms"]
    result = {
        "schema": "reference-pipeline/1",
        "case_id": study["id"],
        "model": {"name": m["name"], "version": m["version"], "demo": m["demo"],
                  "sha256": sha256(package / "manifest.toml")},
        "precision": precision,
        "inputs": study["inputs"],
        "tasks": [{"task": t, "title": title, "status": "not_assessable",
                   "reason": f"model package '{m['name']}' has no fitted {t} model"}
                  for t, title in TASKS],
        "quality": {"roi_voxels": int(study["roi"].sum()),
                    "roi_volume_ml": float(study["roi"].sum() * np.prod(zooms) / 1000.0)},
        "timings": timings,
    }
    write_atomic(case / "result.json", json.dumps(result, indent=1).encode())
    imgs = "".join(f'<figure><img src="data:image/png;base64,{base64.b64encode(d).decode()}">'
                   f"<figcaption>{n}</figcaption></figure>" for n, d in pictures)
    html = (f"<!doctype html><meta charset=utf-8><title>{study['id']}</title>"
            f"<h1>Case {study['id']}</h1><p>DEMO MODEL {m['name']}: not for clinical use</p>"
            + "".join(f"<p>{t['title']}: not assessable</p>" for t in result["tasks"]) + imgs)
    write_atomic(case / "report.html", html.encode())
    return case


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case_dir", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--package", type=Path, default=REPO / "models" / "demo-convnext-tiny")
    ap.add_argument("--precision", choices=["f32", "int8"], default="f32")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="ONNX Runtime intra-op threads (glioedge: inference.threads)")
    ap.add_argument("--radiomics-jobs", type=int, default=1,
                    help="processes for PyRadiomics across sequences (default 1, as it runs)")
    ap.add_argument("--json", action="store_true", help="print the timings as JSON")
    args = ap.parse_args()
    t_all = time.perf_counter()
    m = read_manifest(args.package)
    t = time.perf_counter()
    sess = session(args.package, args.precision, args.threads)
    timings = [{"stage": "model_load", "ms": (time.perf_counter() - t) * 1e3}]

    def timed(stage, f):
        t = time.perf_counter()
        r = f()
        timings.append({"stage": stage, "ms": (time.perf_counter() - t) * 1e3})
        return r

    study = timed("load", lambda: load(args.case_dir))
    feats = timed("radiomics", lambda: radiomics_of(study, args.radiomics_jobs))
    deep, cams, heads = timed(
        "inference", lambda: inference_of(study, args.package, m, sess, args.precision))
    timed("fusion", lambda: None)
    feats.update(deep)
    t = time.perf_counter()
    case = report(study, feats, cams, args.precision, timings, args.out, args.package, m)
    timings.append({"stage": "report+write", "ms": (time.perf_counter() - t) * 1e3})
    total = (time.perf_counter() - t_all) * 1e3
    if args.json:
        print(json.dumps({"timings": timings, "total_ms": total, "heads": heads,
                          "features": len(feats), "out": str(case)}, indent=1))
    else:
        for s in timings:
            print(f"{s['stage']:<14} {s['ms']:>10.1f} ms")
        print(f"{'total':<14} {total:>10.1f} ms   ({len(feats)} features) → {case}")


if __name__ == "__main__":
    main()
