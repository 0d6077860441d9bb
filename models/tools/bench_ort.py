#!/usr/bin/env python3
"""ONNX Runtime on the same package files and inputs as `glioedge bench inference`, plus ratios.

    python bench_ort.py models/demo-convnext-tiny [--glioedge target/release/glioedge] [--iters 7]
        [--rounds 2]

ORT fp32 runs the package's graph with the int8 weights dequantized and the activation Q/DQ
removed (exactly what glioedge's `f32` path runs); ORT int8 runs the stored QDQ graph (ORT fuses
it into real integer kernels). Median ms per image at 1 and 2 intra-op threads. With --glioedge,
the tract bench is run in the same session and tract/ORT ratios are printed; with --rounds N
the ORT and tract benches alternate N times (ORT, tract, ORT, tract, ...) and each figure is the
median over the rounds, so both see the same machine load. The load average is printed.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import zstandard
from onnx import numpy_helper


def fp32_graph(model):
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    rename, keep, new_inits = {}, [], []
    q_in = {n.output[0]: n.input[0] for n in g.node if n.name.startswith("act_q/")}
    for n in g.node:
        if n.name.startswith("act_q/"):
            continue
        if n.name.startswith("act_dq/"):
            rename[n.output[0]] = q_in[n.input[0]]
            continue
        if n.name.startswith("w_dq/"):
            q = numpy_helper.to_array(inits[n.input[0]]).astype(np.float32)
            s = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            shape = [1] * q.ndim
            shape[axis] = -1
            new_inits.append(numpy_helper.from_array((q * s.reshape(shape)).astype(np.float32), n.output[0]))
            continue
        keep.append(n)
    for n in keep:
        for i, name in enumerate(n.input):
            if name in rename:
                n.input[i] = rename[name]
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in keep for i in n.input}
    old = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(old + new_inits)
    return model


def bench(path, inputs, threads, iters):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    s.run(None, {"input": inputs[0:1]})
    ts = []
    for i in range(iters):
        x = inputs[i % len(inputs)][None]
        t = time.perf_counter()
        s.run(None, {"input": x})
        ts.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ts))


def tract_bench(glioedge, package, iters):
    out = subprocess.run([glioedge, "bench", "inference", "--json", "--threads", "2",
                          "--iters", str(iters), "--package", package],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("package")
    ap.add_argument("--glioedge")
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    raw = zstandard.ZstdDecompressor().decompress(
        open(os.path.join(args.package, "model.int8.onnx.zst"), "rb").read())
    inputs = np.fromfile(os.path.join(args.package, "goldens", "inputs.f32"), dtype="<f4").reshape(-1, 3, 224, 224)
    tmp = tempfile.mkdtemp()
    p8 = os.path.join(tmp, "int8.onnx")
    open(p8, "wb").write(raw)
    p32 = os.path.join(tmp, "fp32.onnx")
    onnx.save(fp32_graph(onnx.load_from_string(raw)), p32)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    ort_rounds, tract_rounds = [], []
    for _ in range(max(args.rounds, 1)):
        res = {}
        for name, p in [("ort_fp32", p32), ("ort_int8", p8)]:
            for t in (1, 2):
                res[f"{name}_{t}t"] = bench(p, inputs, t, args.iters)
        ort_rounds.append(res)
        if args.glioedge:
            tract_rounds.append(tract_bench(args.glioedge, args.package, args.iters))
    res = {k: float(np.median([r[k] for r in ort_rounds])) for k in ort_rounds[0]}
    print(json.dumps(res, indent=1))
    if args.glioedge:
        keys = ("image_ms_1t", "image_ms_nt_mm", "batch9_ms_1t", "batch9_ms_nt", "batch9_scaling",
                "load_s")
        tr = tract_rounds[0]
        for i, r in enumerate(tr["rows"]):
            for k in keys:
                r[k] = float(np.median([t["rows"][i][k] for t in tract_rounds]))
        tr["peak_rss_mb"] = max(t["peak_rss_mb"] for t in tract_rounds)
        tr["rounds"] = len(tract_rounds)
        print(json.dumps(tr, indent=1))
        for r in tr["rows"]:
            for t, key in ((1, "image_ms_1t"), (2, "image_ms_nt_mm")):
                print(f"tract {r['precision']} {t}t {r[key]:.1f} ms: "
                      f"{r[key] / res[f'ort_fp32_{t}t']:.2f}x ORT fp32 ({res[f'ort_fp32_{t}t']:.1f} ms), "
                      f"{r[key] / res[f'ort_int8_{t}t']:.2f}x ORT int8 ({res[f'ort_int8_{t}t']:.1f} ms)")
            per_img = r["batch9_ms_nt"] / 9
            print(f"tract {r['precision']} 9 images 1→2 workers: {r['batch9_scaling']:.2f}x "
                  f"({r['batch9_ms_1t']:.0f} → {r['batch9_ms_nt']:.0f} ms; {per_img:.1f} ms/image "
                  f"= {per_img / res['ort_fp32_1t']:.2f}x ORT fp32 1t, "
                  f"{per_img / res['ort_fp32_2t']:.2f}x ORT fp32 2t)")
        print(f"peak RSS of glioedge bench: {tr['peak_rss_mb']:.0f} MB")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
