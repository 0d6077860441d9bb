#!/usr/bin/env python3
"""Build a glioedge model package from timm's convnext_tiny.

    python export_convnext.py --out models/demo-convnext-tiny [--weights ckpt.pth]

Steps (every step deterministic for a given seed):
1. Backbone: timm `convnext_tiny` (num_classes=0). Without --weights it is a fixed-seed
   initialisation whose layer-scale vectors are re-drawn uniform(0.05, 0.6) (timm's 1e-6 would make
   every block nearly the identity and hide quantization error) and whose final LayerNorm gets
   non-trivial affine parameters (so the analytic Grad-CAM really goes through the norm).
2. Weights are snapped to symmetric per-output-channel int8 (scale = absmax/127, q in [-127, 127]).
   The fp32 model that the goldens describe is that snapped model, so "f32" in glioedge (int8-stored
   weights dequantized at load) is exactly the fp32 reference, and "int8" differs from it only by
   activation quantization.
3. Export to ONNX (opset 17, dynamic batch): input `input` N×3×224×224, outputs `features` (N×768,
   pooled after the final norm) and `feature_map` (N×768×7×7).
4. Static QDQ int8: every Conv/MatMul weight becomes an int8 initializer + DequantizeLinear
   (per-channel), every Conv/MatMul data input gets QuantizeLinear→DequantizeLinear (int8
   symmetric, per tensor) calibrated (absmax) on synthetic phantom slices. Activation Q/DQ node
   names start with `act_q/` and `act_dq/` so a runtime can strip them (weight-only path).
5. Goldens for three fixed non-trivial inputs: torch fp32, ORT fp32, torch int8 (fake-quant with
   the same scales), ORT int8 features; head logits; torch autograd Grad-CAM (7×7) per head.
6. The package: model.int8.onnx.zst, final_norm.json, heads.json, goldens/, manifest.toml with
   the sha256 of every file, manifest.sha256 (checksum of the manifest itself).
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import timm
import torch
import zstandard
from onnx import TensorProto, helper, numpy_helper

SEQUENCES = ["t1c", "t2", "flair", "t1"]
HEADS = [
    ("idh", ["wildtype", "mutant"], "IDH mutation status (demo weights, not fitted)"),
    ("ki67", ["low", "high"], "Ki-67 labelling index high (>= 10 %) vs low (demo weights, not fitted)"),
]
SIZE = 224


def phantom_slice(rng):
    """A 2.5-D input like glioedge builds: z-scored brain (ellipse) with a tumour blob, 3 channels."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) / (SIZE - 1) * 2 - 1
    cx, cy = rng.uniform(-0.1, 0.1, 2)
    ax, ay = rng.uniform(0.75, 0.95, 2)
    brain = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 < 1
    chans = []
    tx, ty = rng.uniform(-0.4, 0.4, 2)
    tr = rng.uniform(0.15, 0.35)
    for c in range(3):
        img = 0.4 * np.sin(xx * rng.uniform(2, 8) + rng.uniform(0, 6)) * np.cos(yy * rng.uniform(2, 8))
        r = np.sqrt((xx - tx) ** 2 + (yy - ty) ** 2) / (tr * (0.9 + 0.1 * c))
        img += rng.uniform(1.0, 2.5) * np.exp(-(r ** 2)) - 0.8 * (r < 0.4)
        img += rng.normal(0, 0.25, img.shape)
        img = np.where(brain, img, 0.0)
        m, s = img[brain].mean(), img[brain].std()
        img = np.where(brain, (img - m) / s, 0.0)
        chans.append(np.clip(img, -5, 5))
    return np.stack(chans).astype(np.float32)


def build_backbone(seed, weights):
    torch.manual_seed(seed)
    m = timm.create_model("convnext_tiny", pretrained=False, num_classes=0)
    if weights:
        sd = torch.load(weights, map_location="cpu", weights_only=True)
        sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
        sd = {k: v for k, v in sd.items() if not k.startswith("head.fc.")}
        missing, unexpected = m.load_state_dict(sd, strict=False)
        if unexpected or missing:
            sys.exit(f"--weights {weights}: missing {missing}, unexpected {unexpected}")
    else:
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, p in m.named_parameters():
                if name.endswith(".gamma"):
                    p.copy_(torch.empty(p.shape).uniform_(0.05, 0.6, generator=g))
                elif ("norm" in name) and name.endswith(".weight"):
                    p.copy_(torch.empty(p.shape).uniform_(0.7, 1.3, generator=g))
                elif ("norm" in name) and name.endswith(".bias"):
                    p.copy_(torch.empty(p.shape).normal_(0.0, 0.1, generator=g))
    m.eval()
    # Snap Conv/Linear weights to per-output-channel symmetric int8.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                w = mod.weight
                flat = w.reshape(w.shape[0], -1)
                s = (flat.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
                q = torch.clamp(torch.round(flat / s[:, None]), -127, 127)
                mod.weight.copy_((q * s[:, None]).reshape(w.shape))
    return m


class Wrapped(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        fm = self.m.forward_features(x)
        return self.m.forward_head(fm), fm


def quant_modules(m):
    return [mod for mod in m.modules() if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear))]


def calibrate(m, batches):
    mods = quant_modules(m)
    absmax = [0.0] * len(mods)
    hooks = []
    for i, mod in enumerate(mods):
        def hook(_mod, inp, i=i):
            absmax[i] = max(absmax[i], float(inp[0].detach().abs().max()))
        hooks.append(mod.register_forward_pre_hook(hook))
    with torch.no_grad():
        for b in batches:
            m.forward_features(torch.from_numpy(b))
    for h in hooks:
        h.remove()
    # Depthwise convolutions keep fp32 activations: their input is the residual stream, whose
    # per-tensor int8 quantization alone costs ~6 % cosine (measured); they are 1.3 % of the MACs.
    return [None if isinstance(mod, torch.nn.Conv2d) and mod.groups > 1 else np.float32(a / 127.0)
            for mod, a in zip(mods, absmax)]


def fake_quant_hooks(m, scales):
    hooks = []
    for mod, s in zip(quant_modules(m), scales):
        if s is None:
            continue
        s = float(s)

        def hook(_mod, inp, s=s):
            x = inp[0]
            return (torch.clamp(torch.round(x / s), -128, 127) * s,)
        hooks.append(mod.register_forward_pre_hook(hook))
    return hooks


def to_qdq(fp32_path, out_path, act_scales):
    model = onnx.load(fp32_path)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    new_nodes, new_inits = [], []
    qi = 0
    for node in g.node:
        if node.op_type in ("Conv", "MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in inits:
            w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            if node.op_type == "Conv":
                axis = 0
                flat = w.reshape(w.shape[0], -1)
            elif node.op_type == "MatMul":
                axis = 1
                flat = w.T
            else:
                if not any(a.name == "transB" and a.i == 1 for a in node.attribute):
                    sys.exit(f"Gemm {node.name} without transB not handled")
                axis = 0
                flat = w
            s = (np.abs(flat).max(axis=1) / np.float32(127.0)).astype(np.float32)
            s = np.maximum(s, np.float32(1e-12))
            q = np.clip(np.round(flat / s[:, None]), -127, 127).astype(np.int8)
            q = q.reshape(w.shape) if node.op_type != "MatMul" else q.T.copy()
            base = f"w{qi}"
            new_inits += [
                numpy_helper.from_array(q, base + "_q"),
                numpy_helper.from_array(s, base + "_scale"),
                numpy_helper.from_array(np.zeros_like(s, dtype=np.int8), base + "_zp"),
            ]
            new_nodes.append(helper.make_node(
                "DequantizeLinear", [base + "_q", base + "_scale", base + "_zp"], [base + "_dq"],
                name=f"w_dq/{qi}", axis=axis))
            # activation Q/DQ (per tensor, int8 symmetric)
            a = node.input[0]
            ins = list(node.input)
            ins[1] = base + "_dq"
            if act_scales[qi] is None:
                del node.input[:]
                node.input.extend(ins)
                qi += 1
                new_nodes.append(node)
                continue
            sa = np.asarray(act_scales[qi], dtype=np.float32)
            new_inits += [
                numpy_helper.from_array(sa, f"a{qi}_scale"),
                numpy_helper.from_array(np.zeros((), dtype=np.int8), f"a{qi}_zp"),
            ]
            new_nodes.append(helper.make_node(
                "QuantizeLinear", [a, f"a{qi}_scale", f"a{qi}_zp"], [f"a{qi}_q"], name=f"act_q/{qi}"))
            new_nodes.append(helper.make_node(
                "DequantizeLinear", [f"a{qi}_q", f"a{qi}_scale", f"a{qi}_zp"], [f"a{qi}_dq"],
                name=f"act_dq/{qi}"))
            ins[0] = f"a{qi}_dq"
            del node.input[:]
            node.input.extend(ins)
            qi += 1
        new_nodes.append(node)
    if qi != len(act_scales):
        sys.exit(f"ONNX has {qi} quantizable products but torch has {len(act_scales)} modules")
    used = {i for n in new_nodes for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    del g.node[:]
    g.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    return qi


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def gradcam_torch(m, x, w, b, cls):
    """torch autograd Grad-CAM of logit[cls] of a linear head over the pooled features."""
    x = torch.from_numpy(x[None])
    fm = m.forward_features(x)
    fm.retain_grad()
    feats = m.forward_head(fm)
    logit = feats @ torch.from_numpy(w).T + torch.from_numpy(b)
    logit[0, cls].backward()
    alpha = fm.grad[0].mean(dim=(1, 2))
    cam = torch.relu((alpha[:, None, None] * fm[0]).sum(0))
    return cam.detach().numpy().reshape(-1), alpha.detach().numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", help="a real convnext_tiny checkpoint (state_dict); default: fixed-seed demo")
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--name", default="demo-convnext-tiny")
    ap.add_argument("--version", default="0.1.0")
    ap.add_argument("--calibration", type=int, default=16, help="phantom slices for calibration")
    ap.add_argument("--fp32-out", help="also write the fp32 ONNX here (not packaged; for bench_ort.py)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(os.path.join(args.out, "goldens"), exist_ok=True)
    m = build_backbone(args.seed, args.weights)
    wrapped = Wrapped(m).eval()

    rng = np.random.default_rng(args.seed + 2)
    calib = [phantom_slice(rng)[None] for _ in range(args.calibration)]
    golden_rng = np.random.default_rng(args.seed + 3)
    inputs = np.stack([phantom_slice(golden_rng) for _ in range(3)])
    act_scales = calibrate(m, calib)

    fp32_path = args.fp32_out or os.path.join(args.out, "model.fp32.onnx")
    with torch.no_grad():
        torch.onnx.export(
            wrapped, torch.from_numpy(inputs[:1]), fp32_path, dynamo=False, opset_version=17,
            input_names=["input"], output_names=["features", "feature_map"],
            dynamic_axes={"input": {0: "N"}, "features": {0: "N"}, "feature_map": {0: "N"}},
            do_constant_folding=True)
    int8_path = os.path.join(args.out, "model.int8.onnx")
    nq = to_qdq(fp32_path, int8_path, act_scales)
    print(f"quantized {nq} Conv/MatMul products", file=sys.stderr)

    # Heads (demo: seeded random linear layers; the fusion work fits real ones).
    hg = np.random.default_rng(args.seed + 4)
    heads = {}
    for name, classes, _ in HEADS:
        heads[name] = {
            "weights": (hg.normal(0, 1, (len(classes), 768)) / np.sqrt(768)).astype(np.float32),
            "bias": hg.normal(0, 0.1, len(classes)).astype(np.float32),
        }

    # Goldens.
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    s32 = ort.InferenceSession(fp32_path, opts, providers=["CPUExecutionProvider"])
    s8 = ort.InferenceSession(int8_path, opts, providers=["CPUExecutionProvider"])
    gold = {"inputs_file": "goldens/inputs.f32", "shape": list(inputs.shape), "cases": []}
    for i in range(inputs.shape[0]):
        x = inputs[i:i + 1]
        with torch.no_grad():
            tf, tfm = wrapped(torch.from_numpy(x))
            hooks = fake_quant_hooks(m, act_scales)
            tq, _ = wrapped(torch.from_numpy(x))
            for h in hooks:
                h.remove()
        of, ofm = s32.run(None, {"input": x})
        qf, _ = s8.run(None, {"input": x})
        case = {
            "torch_fp32": tf[0].numpy().tolist(),
            "ort_fp32": of[0].tolist(),
            "torch_int8": tq[0].numpy().tolist(),
            "ort_int8": qf[0].tolist(),
            "feature_map_ort_fp32_first16": ofm[0].reshape(-1)[:16].tolist(),
            "heads": {},
        }
        for name, classes, _ in HEADS:
            w, b = heads[name]["weights"], heads[name]["bias"]
            logits = (tf[0].numpy().astype(np.float64) @ w.T.astype(np.float64) + b).tolist()
            cls = len(classes) - 1
            cam, alpha = gradcam_torch(m, inputs[i], w, b, cls)
            case["heads"][name] = {"logits_torch_fp32": logits, "gradcam_class": cls,
                                   "gradcam_torch": cam.tolist()}
        cos = lambda a, b: float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
        print(f"input {i}: cos(ort32, torch32)={cos(of[0], tf[0].numpy()):.7f} "
              f"cos(ort8, ort32)={cos(qf[0], of[0]):.6f} cos(torch8, ort8)={cos(tq[0].numpy(), qf[0]):.6f}",
              file=sys.stderr)
        gold["cases"].append(case)
    inputs.astype("<f4").tofile(os.path.join(args.out, "goldens", "inputs.f32"))
    with open(os.path.join(args.out, "goldens", "goldens.json"), "w") as f:
        json.dump(gold, f)

    norm = m.head.norm
    with open(os.path.join(args.out, "final_norm.json"), "w") as f:
        json.dump({"eps": float(norm.eps), "weight": norm.weight.detach().numpy().tolist(),
                   "bias": norm.bias.detach().numpy().tolist()}, f)
    with open(os.path.join(args.out, "heads.json"), "w") as f:
        json.dump({k: {"weights": v["weights"].tolist(), "bias": v["bias"].tolist()} for k, v in heads.items()}, f)

    raw = open(int8_path, "rb").read()
    with open(int8_path + ".zst", "wb") as f:
        f.write(zstandard.ZstdCompressor(level=12).compress(raw))
    os.remove(int8_path)
    if not args.fp32_out:
        os.remove(fp32_path)
    write_manifest(args, len(raw), demo=args.weights is None)


def write_manifest(args, onnx_bytes, demo):
    out = args.out
    files = [("model.int8.onnx.zst", "model", onnx_bytes), ("final_norm.json", "final_norm", None),
             ("heads.json", "heads", None), ("goldens/goldens.json", "goldens", None),
             ("goldens/inputs.f32", "golden_inputs", None)]
    lines = [
        "# glioedge model package manifest. Checked by `glioedge model verify`.",
        "schema_version = 1",
        f'name = "{args.name}"',
        f'version = "{args.version}"',
        f"demo = {'true' if demo else 'false'}",
        'architecture = "convnext_tiny"',
        'intended_use = "Research demonstration of the glioedge inference path only. '
        + ('Fixed-seed weights: outputs carry no clinical meaning."' if demo else 'See MODEL_CARD.md."'),
        f"sequences = [{', '.join(json.dumps(s) for s in SEQUENCES)}]",
        "",
        "[input]",
        'name = "input"',
        "channels = 3",
        f"size = {SIZE}",
        "",
        "[slice_policy]",
        "# Axial slices (RAS) with the largest ROI area; square crop around the ROI bounding box.",
        "slices = 3",
        "margin = 0.15",
        "min_crop_voxels = 32",
        "context = 1",
        "",
        "[normalisation]",
        '# z-score over brain voxels (value > threshold) of the whole volume, clipped, then scaled.',
        'method = "zscore_brain"',
        "brain_threshold = 0.0",
        "clip = 5.0",
        "scale = 1.0",
        "",
        "[outputs]",
        'features = "features"',
        'feature_map = "feature_map"',
        "feature_dim = 768",
        "map_size = 7",
        "",
        "[precision]",
        'variants = ["int8", "f32"]',
        'int8 = "static QDQ: int8 per-channel weights, int8 per-tensor activations (act_q/, act_dq/ nodes)"',
        'f32 = "int8-stored weights dequantized at load, activation Q/DQ removed (weight-only)"',
        "",
    ]
    for name, classes, desc in HEADS:
        lines += [
            "[[heads]]",
            f'name = "{name}"',
            f"classes = [{', '.join(json.dumps(c) for c in classes)}]",
            f'description = "{desc}"',
            "fitted = false",
            "",
        ]
    for path, role, dec in files:
        full = os.path.join(out, path)
        lines += [
            "[[files]]",
            f'path = "{path}"',
            f'role = "{role}"',
            f"bytes = {os.path.getsize(full)}",
        ]
        if dec is not None:
            lines.append(f"decompressed_bytes = {dec}")
        lines += [f'sha256 = "{sha256(full)}"', ""]
    text = "\n".join(lines)
    with open(os.path.join(out, "manifest.toml"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "manifest.sha256"), "w") as f:
        f.write(f"{sha256(os.path.join(out, 'manifest.toml'))}  manifest.toml\n")


if __name__ == "__main__":
    main()
