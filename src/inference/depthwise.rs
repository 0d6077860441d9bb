//! ConvNeXt's depthwise 7×7 convolutions as a tract op of our own.
//!
//! tract lowers a depthwise convolution to its `DepthWiseConv`, which splits each plane into
//! zones by how many taps fall inside the image; on x86_64 only the interior zone has a vector
//! kernel, and on ConvNeXt's 14×14 and 7×7 planes most outputs are border outputs (the interior
//! of a 7×7 plane under a 7×7 kernel is one pixel). Those went through a generic loop: 17.5 ms of
//! a 67 ms image (docs/benchmarks.md). Here each plane is copied once into a zero-bordered
//! scratch plane, after which every output is an interior output: eight outputs of a row are
//! accumulated in registers over the k×k taps and stored once. The loop is plain safe Rust that
//! the compiler vectorises for the build's baseline (SSE2 on x86_64, NEON on aarch64).
//!
//! Arithmetic, per output: the bias, then each tap's product added in row-major tap order, in
//! f32, with no fused multiply-add (Rust does not contract `a * b + c`). The result is the same
//! bits on every machine and every run; it differs from tract's and ONNX Runtime's in the last
//! bits only (their sums run in other orders), which the parity tests bound.
//!
//! [`replace_depthwise`] swaps tract's `Conv` for this op where the convolution is depthwise
//! (groups = input = output channels), f32, NCHW, stride 1, dilation 1 and zero-padded to the
//! same size with an odd kernel of at most 9; anything else is left to tract. It runs on the
//! typed model before tract's own optimisation, so tract never re-lays the convolution out.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Outputs accumulated together (two SSE / NEON registers).
const LANES: usize = 8;
/// Input values one row of taps reads for `LANES` outputs, rounded up: `LANES + k − 1 ≤ SPAN`.
const SPAN: usize = 16;

/// Depthwise convolution, stride 1, zero "same" padding, NCHW, f32. Inputs: data
/// `[N, C, H, W]`, kernel `[C, 1, k, k]`, bias (`C` values, or one for all channels).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DepthwiseSame {
    /// Kernel side (odd, ≤ 9).
    pub k: usize,
}

impl Op for DepthwiseSame {
    fn name(&self) -> StaticName {
        "GlioedgeDepthwiseSame".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{0}x{0}, stride 1, same zero padding, NCHW",
            self.k
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for DepthwiseSame {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, kernel, bias) = args_3!(inputs);
        let shape: TVec<usize> = x.shape().into();
        let [_, c, h, w] = shape[..] else {
            bail!("depthwise input must be N×C×H×W, got {:?}", shape);
        };
        let k = self.k;
        ensure!(
            kernel.shape() == [c, 1, k, k],
            "depthwise kernel {:?} does not match {c} channels of {k}×{k}",
            kernel.shape()
        );
        let x = x.try_as_plain_ram()?;
        let x = x.as_slice::<f32>()?;
        let kernel = kernel.try_as_plain_ram()?;
        let kernel = kernel.as_slice::<f32>()?;
        let bias = bias.try_as_plain_ram()?;
        let bias = bias.as_slice::<f32>()?;
        ensure!(
            bias.len() == c || bias.len() == 1,
            "depthwise bias has {} values for {c} channels",
            bias.len()
        );
        let mut out = vec![0f32; x.len()];
        let mut scratch = Scratch::new(h, w, k);
        for (plane, (src, dst)) in x
            .chunks_exact(h * w)
            .zip(out.chunks_exact_mut(h * w))
            .enumerate()
        {
            let ch = plane % c;
            let taps = &kernel[ch * k * k..(ch + 1) * k * k];
            let b = if bias.len() == 1 { bias[0] } else { bias[ch] };
            scratch.fill(src);
            match k {
                1 => scratch.convolve::<1>(taps, b, dst)?,
                3 => scratch.convolve::<3>(taps, b, dst)?,
                5 => scratch.convolve::<5>(taps, b, dst)?,
                7 => scratch.convolve::<7>(taps, b, dst)?,
                9 => scratch.convolve::<9>(taps, b, dst)?,
                _ => bail!("depthwise kernel side {k} is not supported"),
            }
        }
        let out = tract_ndarray::ArrayD::from_shape_vec(tract_ndarray::IxDyn(&shape), out)?;
        Ok(tvec!(out.into_tensor().into_tvalue()))
    }
}

impl TypedOp for DepthwiseSame {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 3, "depthwise takes data, kernel and bias");
        ensure!(inputs[0].datum_type == f32::datum_type());
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let taps = (self.k * self.k) as i64;
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            inputs[0].shape.volume() * taps
        )))
    }

    as_op!();
}

/// One zero-bordered plane: the image at row and column offset (k−1)/2, wide enough that every
/// group of `LANES` outputs (the last one running past the image) reads `SPAN` values in bounds.
struct Scratch {
    data: Vec<f32>,
    stride: usize,
    h: usize,
    w: usize,
    pad: usize,
}

impl Scratch {
    fn new(h: usize, w: usize, k: usize) -> Scratch {
        let pad = k / 2;
        let stride = w.div_ceil(LANES) * LANES - LANES + SPAN;
        Scratch {
            data: vec![0f32; (h + k - 1) * stride],
            stride,
            h,
            w,
            pad,
        }
    }

    /// Copies one plane in; the border stays zero (only the interior is ever written).
    fn fill(&mut self, plane: &[f32]) {
        for (y, row) in plane.chunks_exact(self.w).enumerate() {
            let at = (y + self.pad) * self.stride + self.pad;
            self.data[at..at + self.w].copy_from_slice(row);
        }
    }

    /// `out` (H×W) = bias + Σ taps × shifted plane, `K` the kernel side.
    fn convolve<const K: usize>(
        &self,
        taps: &[f32],
        bias: f32,
        out: &mut [f32],
    ) -> TractResult<()> {
        const { assert!(K + LANES - 1 <= SPAN) };
        let taps: &[f32; 81] = &{
            let mut t = [0f32; 81];
            t[..K * K].copy_from_slice(&taps[..K * K]);
            t
        };
        for (y, out_row) in out.chunks_exact_mut(self.w).take(self.h).enumerate() {
            for (x0, dst) in (0..self.w).step_by(LANES).zip(out_row.chunks_mut(LANES)) {
                let mut acc = [bias; LANES];
                for ky in 0..K {
                    let at = (y + ky) * self.stride + x0;
                    let seg: &[f32; SPAN] = self.data[at..]
                        .first_chunk::<SPAN>()
                        .ok_or_else(|| format_err!("depthwise scratch row too short"))?;
                    for kx in 0..K {
                        let t = taps[ky * K + kx];
                        for (a, v) in acc.iter_mut().zip(&seg[kx..kx + LANES]) {
                            *a += t * v;
                        }
                    }
                }
                dst.copy_from_slice(&acc[..dst.len()]);
            }
        }
        Ok(())
    }
}

/// The same-size zero padding of a stride-1 convolution with an odd kernel `k`, however tract
/// spelled it.
fn is_same_padding(padding: &PaddingSpec, k: usize) -> bool {
    let half = k / 2;
    match padding {
        PaddingSpec::Explicit(before, after) | PaddingSpec::ExplicitOnnxPool(before, after, _) => {
            before.iter().chain(after.iter()).all(|&p| p == half)
        }
        PaddingSpec::SameUpper | PaddingSpec::SameLower => true,
        PaddingSpec::Valid => k == 1,
    }
}

/// The kernel side of node `id` if it is a convolution [`DepthwiseSame`] covers.
fn covered_kernel(model: &TypedModel, id: usize) -> TractResult<Option<usize>> {
    let Some(conv) = model.node(id).op_as::<Conv>() else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    let c = conv.input_channels();
    let &[k, k2] = &spec.kernel_shape[..] else {
        return Ok(None);
    };
    let ones = |v: &Option<TVec<usize>>| v.as_ref().is_none_or(|v| v.iter().all(|&s| s == 1));
    let facts = model.node_input_facts(id)?;
    let covered = conv.q_params.is_none()
        && conv.group > 1
        && conv.group == c
        && conv.output_channels() == c
        && conv.kernel_fmt == KernelFormat::OIHW
        && spec.data_format == DataFormat::NCHW
        && k == k2
        && k % 2 == 1
        && k <= 9
        && ones(&spec.strides)
        && ones(&spec.dilations)
        && is_same_padding(&spec.padding, k)
        && facts.len() == 3
        && facts.iter().all(|f| f.datum_type == f32::datum_type())
        && facts[0].rank() == 4
        && facts[1].shape.as_concrete() == Some(&[c, 1, k, k][..]);
    Ok(covered.then_some(k))
}

/// Replaces every depthwise convolution this op covers (see the module header); returns how
/// many were replaced.
pub fn replace_depthwise(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let Some(k) = covered_kernel(model, id)? else {
            continue;
        };
        let node = model.node(id);
        let inputs = node.inputs.clone();
        let patch = TypedModelPatch::replace_single_op(model, node, &inputs, DepthwiseSame { k })?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
pub(in crate::inference) mod tests {
    use super::*;

    /// The convolution written out the slow way, in f64.
    fn reference(
        x: &[f32],
        c: usize,
        h: usize,
        w: usize,
        k: usize,
        kern: &[f32],
        bias: &[f32],
    ) -> Vec<f64> {
        let half = (k / 2) as isize;
        let mut out = vec![0f64; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                for xo in 0..w {
                    let mut s = bias[ch] as f64;
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = y as isize + ky as isize - half;
                            let ix = xo as isize + kx as isize - half;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                s += kern[(ch * k + ky) * k + kx] as f64
                                    * x[(ch * h + iy as usize) * w + ix as usize] as f64;
                            }
                        }
                    }
                    out[(ch * h + y) * w + xo] = s;
                }
            }
        }
        out
    }

    /// Deterministic values in [−1, 1).
    pub(in crate::inference) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn run(c: usize, h: usize, w: usize, k: usize) -> (Vec<f32>, Vec<f64>) {
        let x = values(c * h * w, 1);
        let kern = values(c * k * k, 2);
        let bias = values(c, 3);
        let t = |v: &[f32], s: &[usize]| Tensor::from_shape(s, v).map(|t| t.into_tvalue());
        let out = DepthwiseSame { k }
            .eval(
                &EvalContext::out_of_plan(),
                tvec!(
                    t(&x, &[1, c, h, w]).unwrap(),
                    t(&kern, &[c, 1, k, k]).unwrap(),
                    t(&bias, &[c]).unwrap()
                ),
            )
            .unwrap();
        let got = out[0]
            .try_as_plain_ram()
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .to_vec();
        (got, reference(&x, c, h, w, k, &kern, &bias))
    }

    #[test]
    fn matches_the_direct_sum_on_convnext_planes_and_ragged_ones() {
        for &(c, h, w, k) in &[
            (3, 56, 56, 7),
            (4, 14, 14, 7),
            (5, 7, 7, 7),
            (2, 9, 13, 3),
            (2, 5, 11, 9),
            (2, 3, 4, 7),
        ] {
            let (got, want) = run(c, h, w, k);
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (*g as f64 - w).abs())
                .fold(0f64, f64::max);
            // 49 products of values in [−1, 1) summed in f32: a few ulps of ~10.
            assert!(worst < 1e-5, "{c}x{h}x{w} k{k}: worst {worst}");
        }
    }

    /// Convolutions the op does not cover stay tract's: strided, not depthwise, even kernel.
    #[test]
    fn other_convolutions_are_left_to_tract() {
        use tract_onnx::tract_core::ops::cnn::PoolSpec;
        let conv = |c: usize, group: usize, k: usize, stride: usize, pad: usize| {
            let mut m = TypedModel::default();
            let x = m.add_source("x", f32::fact([1, c, 8, 8])).expect("source");
            let kern = m
                .add_const("k", Tensor::zero::<f32>(&[c, c / group, k, k]).expect("k"))
                .expect("const");
            let b = m
                .add_const("b", Tensor::zero::<f32>(&[c]).expect("b"))
                .expect("const");
            let spec = PoolSpec::new(
                DataFormat::NCHW,
                tvec!(k, k),
                PaddingSpec::Explicit(tvec!(pad, pad), tvec!(pad, pad)),
                None,
                Some(tvec!(stride, stride)),
                c,
                c,
            );
            let op = Conv::new(spec, KernelFormat::OIHW, group, None);
            let y = m.wire_node("conv", op, &[x, kern, b]).expect("wires");
            m.select_output_outlets(&y).expect("outputs");
            replace_depthwise(&mut m).expect("runs")
        };
        assert_eq!(conv(4, 4, 7, 1, 3), 1);
        assert_eq!(conv(4, 4, 3, 1, 1), 1);
        assert_eq!(conv(4, 4, 7, 2, 3), 0, "strided");
        assert_eq!(conv(4, 1, 7, 1, 3), 0, "not depthwise");
        assert_eq!(conv(4, 4, 7, 1, 2), 0, "not same padding");
        assert_eq!(conv(4, 4, 2, 1, 0), 0, "even kernel");
    }
}
