#!/usr/bin/env python3
"""Peer for tests/radiomics_filters.rs: PyRadiomics' pre-processing and filters, reproduced
with SimpleITK and PyWavelets called exactly as PyRadiomics 3.1 `imageoperations` calls them
(resampleImage / cropToTumorMask, getLoGImage, getWaveletImage/_swt3).

PyRadiomics itself is not needed (it does not install from PyPI); only SimpleITK, PyWavelets
and numpy. Run in a venv outside the repo:

    python tests/peers/radiomics_filters_peer.py /work/shared/data tests/golden

and it writes one small JSON per case: the pre-processed grid, and for each derived image
(PyRadiomics' name and order) statistics over the ROI and over the whole image, plus sampled
voxel values. The Rust test compares against these.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pywt
import SimpleITK as sitk


def bounding_box(mask_arr, label):
    """LabelShapeStatistics bounding box: (lo_x, lo_y, lo_z, size_x, size_y, size_z)."""
    zz, yy, xx = np.nonzero(mask_arr == label)
    lo = [int(xx.min()), int(yy.min()), int(zz.min())]
    hi = [int(xx.max()), int(yy.max()), int(zz.max())]
    return np.array(lo + [h - l + 1 for l, h in zip(lo, hi)])


def crop_to_tumor_mask(image, mask, bb_lu, pad):
    size = np.array(mask.GetSize())
    lo = np.maximum(bb_lu[0::2] - pad, 0)
    up = np.maximum(size - bb_lu[1::2] - pad - 1, 0)
    cif = sitk.CropImageFilter()
    cif.SetLowerBoundaryCropSize([int(v) for v in lo])
    cif.SetUpperBoundaryCropSize([int(v) for v in up])
    return cif.Execute(image), cif.Execute(mask)


def resample_image(image, mask, spacing, interpolator, label, pad):
    """imageoperations.resampleImage (PyRadiomics 3.1)."""
    mask_spacing = np.array(mask.GetSpacing())
    image_spacing = np.array(image.GetSpacing())
    spacing = np.array(spacing, dtype=float)
    spacing = np.where(spacing == 0, mask_spacing, spacing)
    bb = bounding_box(sitk.GetArrayFromImage(mask), label)
    nd = 3
    mask_size = np.array(mask.GetSize())
    spacing = np.where(bb[nd:] != 1, spacing, mask_spacing)
    if np.allclose(image_spacing, spacing):
        rif = sitk.ResampleImageFilter()
        rif.SetReferenceImage(image)
        rif.SetInterpolator(sitk.sitkNearestNeighbor)
        mask = rif.Execute(mask)
        bb = bounding_box(sitk.GetArrayFromImage(mask), label)
        lu = np.empty(2 * nd, dtype=int)
        lu[::2] = bb[:nd]
        lu[1::2] = bb[:nd] + bb[nd:] - 1
        return crop_to_tumor_mask(image, mask, lu, pad)
    ratio = mask_spacing / spacing
    lb = np.floor((bb[:nd] - 0.5) * ratio - pad)
    ub = np.ceil((bb[:nd] + bb[nd:] - 0.5) * ratio + pad)
    max_ub = np.ceil(mask_size * ratio) - 1
    lb = np.where(lb < 0, 0, lb)
    ub = np.where(ub > max_ub, max_ub, ub)
    new_size = np.array(ub - lb + 1, dtype="int").tolist()
    orig_lb = lb / ratio
    new_origin_index = np.array(0.5 * (spacing - mask_spacing) / mask_spacing)
    new_origin = mask.TransformContinuousIndexToPhysicalPoint(new_origin_index + orig_lb)
    rif = sitk.ResampleImageFilter()
    rif.SetOutputSpacing(spacing)
    rif.SetOutputDirection(np.array(mask.GetDirection()))
    rif.SetSize(new_size)
    rif.SetOutputOrigin(new_origin)
    rif.SetOutputPixelType(image.GetPixelID())
    rif.SetInterpolator(getattr(sitk, interpolator))
    res_image = rif.Execute(image)
    rif.SetOutputPixelType(mask.GetPixelID())
    rif.SetInterpolator(sitk.sitkNearestNeighbor)
    res_mask = rif.Execute(mask)
    return res_image, res_mask


def log_images(image, sigmas):
    size = np.array(image.GetSize())
    spacing = np.array(image.GetSpacing())
    if np.min(size) < 4:
        return
    for sigma in sigmas:
        if sigma > 0.0 and np.all(size >= np.ceil(sigma / spacing) + 1):
            f = sitk.LaplacianRecursiveGaussianImageFilter()
            f.SetNormalizeAcrossScale(True)
            f.SetSigma(sigma)
            yield "log-sigma-%s-mm-3D" % str(sigma).replace(".", "-"), f.Execute(image)


def wavelet_images(image, wavelet="coif1", level=1, start_level=0):
    axes = (2, 1, 0)
    matrix = sitk.GetArrayFromImage(image)
    shape = matrix.shape
    padding = tuple((0, 1 if d % 2 != 0 else 0) for d in shape)
    data = np.pad(matrix.copy(), padding, "wrap")
    w = pywt.Wavelet(wavelet)
    for _ in range(start_level):
        data = pywt.swtn(data, w, level=1, start_level=0, axes=axes)[0]["aaa"].copy()
    crop = tuple(slice(None, -1 if d % 2 != 0 else None) for d in shape)
    out = []
    for idx in range(1, level + 1):
        dec = pywt.swtn(data, w, level=1, start_level=0, axes=axes)[0]
        data = dec["aaa"].copy()
        for name, arr in dec.items():
            if name == "aaa":
                continue
            tag = name.replace("a", "L").replace("d", "H")
            out.append(("wavelet-%s" % tag if idx == 1 else "wavelet%d-%s" % (idx, tag), arr[crop]))
    out.append(("wavelet-LLL" if level == 1 else "wavelet%d-LLL" % level, data[crop]))
    return out


def summary(arr, roi, n_samples=24):
    """Statistics of a derived image (numpy z,y,x) inside the ROI and over the whole image."""
    a = np.asarray(arr, dtype=np.float64)
    inside = a[roi]

    def stats(v):
        return {
            "n": int(v.size),
            "sum": float(v.sum()),
            "mean": float(v.mean()),
            "std": float(v.std()),
            "min": float(v.min()),
            "max": float(v.max()),
            "sum_abs": float(np.abs(v).sum()),
        }

    zz, yy, xx = np.nonzero(roi)  # C order over (z, y, x): i fastest, as the Rust volume
    pick = np.unique(np.linspace(0, zz.size - 1, n_samples).round().astype(int))
    samples = [[int(xx[p]), int(yy[p]), int(zz[p]), float(a[zz[p], yy[p], xx[p]])] for p in pick]
    # a few voxels outside the ROI too (corners and centre of the grid)
    nz, ny, nx = a.shape
    for (i, j, k) in [(0, 0, 0), (nx - 1, ny - 1, nz - 1), (nx // 2, 0, nz // 2), (0, ny // 2, nz - 1)]:
        samples.append([i, j, k, float(a[k, j, i])])
    return {"roi": stats(inside), "all": stats(a), "samples": samples}


def run_case(name, image_path, mask_path, label, spacing, interpolator, pad, sigmas, out_dir, box=None,
             wavelet=("coif1", 1, 0)):
    image = sitk.ReadImage(str(image_path))
    mask = sitk.ReadImage(str(mask_path))
    if box is not None:
        # A box ROI [lo, hi) (voxel i, j, k of the mask file's grid), label `label`, uint8.
        arr = np.zeros(sitk.GetArrayFromImage(mask).shape, np.uint8)
        (i0, j0, k0), (i1, j1, k1) = box
        arr[k0:k1, j0:j1, i0:i1] = label
        boxed = sitk.GetImageFromArray(arr)
        boxed.CopyInformation(mask)
        mask = boxed
    pixel = image.GetPixelIDTypeAsString()
    if spacing is not None:
        image, mask = resample_image(image, mask, spacing, interpolator, label, pad)
    roi = sitk.GetArrayFromImage(mask) == label
    derived = [("original", sitk.GetArrayFromImage(image), image.GetPixelIDTypeAsString())]
    for n, arr in wavelet_images(image, *wavelet):
        derived.append((n, arr, str(arr.dtype)))
    for n, im in log_images(image, sigmas):
        derived.append((n, sitk.GetArrayFromImage(im), im.GetPixelIDTypeAsString()))
    result = {
        "case": name,
        "image": str(image_path.relative_to(data_dir)),
        "mask": str(mask_path.relative_to(data_dir)),
        "label": label,
        "mask_box": box,
        "input_pixel_type": pixel,
        "settings": {
            "resampledPixelSpacing": spacing,
            "interpolator": interpolator,
            "padDistance": pad,
            "sigma": sigmas,
            "wavelet": wavelet[0],
            "level": wavelet[1],
            "start_level": wavelet[2],
        },
        "preprocessed": {
            "size": list(image.GetSize()),
            "spacing": list(image.GetSpacing()),
            "origin_lps": list(image.GetOrigin()),
            "pixel_type": image.GetPixelIDTypeAsString(),
            "mask_size": list(mask.GetSize()),
            "roi_voxels": int(roi.sum()),
        },
        "software": {
            "SimpleITK": sitk.Version_VersionString(),
            "PyWavelets": pywt.__version__,
            "numpy": np.__version__,
        },
        "derived": [
            {"name": n, "dtype": t, **summary(a, roi)} for n, a, t in derived
        ],
    }
    out = out_dir / ("radiomics_filters_%s.json" % name)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", out, [d["name"] for d in result["derived"]])


def filter_table(path):
    """Writes src/radiomics/filters/wavelet_filters.rs: the bit patterns of each wavelet's
    decomposition filters in double and in single precision, recovered as impulse responses of
    pywt.swt (out[o] = sum_j f[j] x[(o + F/2 - j) mod N]), i.e. the numbers its C code uses."""
    import struct
    names = ["haar"] + ["db%d" % i for i in range(1, 11)] + ["sym%d" % i for i in range(2, 11)] + \
        ["coif%d" % i for i in range(1, 6)]
    h64 = lambda v: "0x%016x" % struct.unpack("<Q", struct.pack("<d", v))[0]
    h32 = lambda v: "0x%08x" % struct.unpack("<I", struct.pack("<f", v))[0]
    out = [HEADER]
    for n in names:
        w = pywt.Wavelet(n)
        F = w.dec_len
        N = 2 * F + 2
        x = np.zeros(N, np.float32)
        x[0] = 1
        a, d = pywt.swt(x, w, level=1)[0]
        lo32 = [np.float32(a[(j - F // 2) % N]) for j in range(F)]
        hi32 = [np.float32(d[(j - F // 2) % N]) for j in range(F)]
        out.append('    FilterBank {\n        name: "%s",\n        lo64: &[%s],\n        hi64: &[%s],\n'
                   '        lo32: &[%s],\n        hi32: &[%s],\n    },' % (
                       n, ", ".join(map(h64, w.dec_lo)), ", ".join(map(h64, w.dec_hi)),
                       ", ".join(map(h32, lo32)), ", ".join(map(h32, hi32))))
    out.append("];\n")
    Path(path).write_text("\n".join(out))


HEADER = """//! Analysis filters of the orthogonal wavelets PyRadiomics can ask PyWavelets for.
//!
//! Generated from PyWavelets 1.8 (`tests/peers/radiomics_filters_peer.py --filters`): the
//! exact bit patterns of `Wavelet.dec_lo` / `dec_hi` (double) and of the single-precision filters
//! PyWavelets uses for `float32` input, which for the Coiflets are not the rounded doubles
//! (PyWavelets scales them by `sqrt(2)` in single precision). Recovered as impulse responses of
//! `pywt.swt`, so they are the numbers its C code multiplies by.

/// One wavelet's decomposition filters.
#[derive(Debug)]
pub(crate) struct FilterBank {
    pub name: &'static str,
    pub lo64: &'static [u64],
    pub hi64: &'static [u64],
    pub lo32: &'static [u32],
    pub hi32: &'static [u32],
}

/// Every supported wavelet, by PyWavelets name.
pub(crate) static BANKS: &[FilterBank] = &["""


def main():
    global data_dir
    if sys.argv[1] == "--filters":
        filter_table(sys.argv[2])
        return
    data = Path(sys.argv[1]).resolve()
    data_dir = data
    out_dir = Path(sys.argv[2])
    brats = data / "brats_case"
    phantom = data / "ibsi" / "digital_phantom"
    # The two reference settings (resample 1 mm, sitkBSpline, padDistance 5; LoG 1, 2, 3 mm).
    run_case("brats_t1c_union_1mm", brats / "t1c.nii.gz", brats / "tumour_union_mask.nii.gz",
             1, [1.0, 1.0, 1.0], "sitkBSpline", 5, [1.0, 2.0, 3.0], out_dir)
    run_case("phantom_1mm", phantom / "phantom.nii.gz", phantom / "mask.nii.gz",
             1, [1.0, 1.0, 1.0], "sitkBSpline", 5, [1.0, 2.0, 3.0], out_dir)
    # Real interpolation on the real case: float32 BSpline to an anisotropic grid, linear,
    # and nearest; a label of the multi-label segmentation.
    run_case("brats_t1c_union_bspline_1p5x1p5x2", brats / "t1c.nii.gz", brats / "tumour_union_mask.nii.gz",
             1, [1.5, 1.5, 2.0], "sitkBSpline", 5, [1.0, 3.0], out_dir)
    run_case("brats_t2w_seg2_linear_2mm", brats / "t2w.nii.gz", brats / "segmentation.nii.gz",
             2, [2.0, 2.0, 2.0], "sitkLinear", 3, [2.0], out_dir)
    run_case("phantom_nearest_1p5mm", phantom / "phantom.nii.gz", phantom / "mask.nii.gz",
             1, [1.5, 1.5, 1.5], "sitkNearestNeighbor", 2, [1.0], out_dir)
    # int16 raw MRI: FLAIR interpolated (B-spline, int16 output: truncated) onto a grid built
    # from a box ROI drawn on the T1c grid (different grid, oblique, 5.5 mm slices).
    tcga = data / "tcga_fg_6692_raw"
    run_case("tcga_flair_int16_on_t1c_box_bspline_1mm", tcga / "TCGA-FG-6692_flair.nii.gz",
             tcga / "TCGA-FG-6692_t1c.nii.gz", 1, [1.0, 1.0, 1.0], "sitkBSpline", 4, [1.0, 2.0], out_dir,
             box=[[100, 90, 10], [140, 130, 16]])
    # Other wavelets, more levels, a start level (PyRadiomics re-applies the level-1 swtn).
    run_case("brats_t2w_union_sym3_level2", brats / "t2w.nii.gz", brats / "tumour_union_mask.nii.gz",
             1, [2.0, 2.0, 2.0], "sitkBSpline", 2, [], out_dir, wavelet=("sym3", 2, 0))
    run_case("phantom_haar_start1_level2", phantom / "phantom.nii.gz", phantom / "mask.nii.gz",
             1, None, "sitkBSpline", 5, [], out_dir, wavelet=("haar", 2, 1))
    run_case("phantom_original", phantom / "phantom.nii.gz", phantom / "mask.nii.gz",
             1, None, "sitkBSpline", 5, [1.0, 2.0], out_dir)


if __name__ == "__main__":
    main()
