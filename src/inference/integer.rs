//! The int8 variant's matrix products in integers.
//!
//! The package stores a static QDQ graph: every pointwise `MatMul` reads
//! `DequantizeLinear(QuantizeLinear(x))` and `DequantizeLinear(w_q)`. tract executes that as
//! simulated int8 (dequantized operands, fp32 products). [`integer_products`] rewrites each such
//! product into what ONNX Runtime runs for it:
//!
//! ```text
//! MatMul(DQ(Q(x)), DQ(w_q))  →  Mul(Cast<f32>(MatMulInteger(Q(x), w_q)), a_scale · w_scale)
//! ```
//!
//! The i8 × i8 → i32 product then runs on tract's integer kernels (AMX / AVX-512-VNNI on x86_64,
//! SDOT/SMLAL on aarch64), with exact integer sums. It holds when the activation's zero point is
//! 0 and the weight's zero points are all 0 (symmetric int8, as the package is quantized), with
//! one weight scale per tensor or per output column.
//!
//! Each int8 `QuantizeLinear` with a scalar scale and zero point 0 becomes a chain of
//! element-wise steps that tract fuses into one vectorised pass, followed by a cast:
//!
//! ```text
//! Q(x) = Cast<i8>(Clip((x · (1/s) + 1.5·2²³) − 1.5·2²³, −128, 127))
//! ```
//!
//! Adding and subtracting 1.5·2²³ rounds to the nearest integer, ties to even, for
//! |x/s| ≤ 2²²; larger values are within 1 of themselves and clipped anyway. `1/s` is computed in
//! f32 as tract's own `QuantizeLinear` does, so the quantized values are the same bits.

use std::collections::{BTreeMap, BTreeSet};

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

use super::{float_values, Int8s};

/// What [`integer_products`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct IntegerRewrite {
    /// `MatMul`s now computed as `MatMulInteger`.
    pub products: usize,
    /// `QuantizeLinear`s now computed as a fused element-wise chain.
    pub quantizers: usize,
    /// Channel-last sections now computed on token matrices ([`super::tokens`]).
    pub sections: usize,
}

/// 1.5 · 2²³: adding it to an f32 of magnitude ≤ 2²² leaves an integer (rounded to even).
const ROUNDER: f32 = 12_582_912.0;
const NAME_ROUNDER: &str = "glioedge/quantize/rounder";
const NAME_LOW: &str = "glioedge/quantize/low";
const NAME_HIGH: &str = "glioedge/quantize/high";

/// Rewrites the graph in place (see the module documentation). Nodes that do not have the
/// expected form are left as they are, so any QDQ graph still loads; only the count says less.
pub(super) fn integer_products(proto: &mut ModelProto) -> IntegerRewrite {
    let Some(graph) = proto.graph.as_mut() else {
        return IntegerRewrite::default();
    };
    let products = rewrite_products(graph);
    let quantizers = rewrite_quantizers(graph);
    if products > 0 {
        drop_dead_dequantizers(graph);
    }
    let sections = super::tokens::token_matrices(graph);
    IntegerRewrite {
        products,
        quantizers,
        sections,
    }
}

/// One product to rewrite.
struct Product {
    /// The int8 activation (output of a `QuantizeLinear`).
    x_q: String,
    /// The int8 weight initializer (K×N).
    w_q: String,
    /// `a_scale · w_scale[n]`, one per output column (or one for all).
    scale: Vec<f32>,
}

fn rewrite_products(graph: &mut GraphProto) -> usize {
    let init = initializers(graph);
    let producer: BTreeMap<&str, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let plans: BTreeMap<usize, Product> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op_type == "MatMul" && n.input.len() == 2)
        .filter_map(|(i, n)| Some((i, product(n, &init, &producer)?)))
        .collect();
    if plans.is_empty() {
        return 0;
    }
    let mut replace = BTreeMap::new();
    let mut scales = Vec::with_capacity(plans.len());
    for (&i, p) in &plans {
        let n = &graph.node[i];
        let Some(out) = n.output.first() else {
            continue; // unreachable: `product` checked the output
        };
        let step = |s: &str| format!("{}/{s}", n.name);
        replace.insert(
            i,
            vec![
                node(
                    &step("integer"),
                    "MatMulInteger",
                    &[&p.x_q, &p.w_q],
                    &step("i32"),
                    vec![],
                ),
                node(
                    &step("cast"),
                    "Cast",
                    &[&step("i32")],
                    &step("f32"),
                    vec![int_attribute("to", DataType::Float as i64)],
                ),
                node(
                    &step("rescale"),
                    "Mul",
                    &[&step("f32"), &step("scale")],
                    out,
                    vec![],
                ),
            ],
        );
        scales.push(TensorProto {
            name: step("scale"),
            dims: if p.scale.len() == 1 {
                vec![]
            } else {
                vec![p.scale.len() as i64]
            },
            data_type: DataType::Float as i32,
            float_data: p.scale.clone(),
            ..Default::default()
        });
    }
    graph.initializer.extend(scales);
    splice(graph, replace);
    plans.len()
}

/// The graph's initializers by name.
pub(super) fn initializers(graph: &GraphProto) -> BTreeMap<&str, &TensorProto> {
    graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect()
}

/// Replaces the nodes at the given indices by the given node lists, in place, keeping the order.
pub(super) fn splice(graph: &mut GraphProto, mut replace: BTreeMap<usize, Vec<NodeProto>>) {
    let old = std::mem::take(&mut graph.node);
    for (i, n) in old.into_iter().enumerate() {
        match replace.remove(&i) {
            Some(new) => graph.node.extend(new),
            None => graph.node.push(n),
        }
    }
}

/// The rewrite of one `MatMul`, if it reads a symmetric int8 activation and a symmetric int8
/// K×N weight initializer (scales per tensor or per column).
fn product(
    n: &NodeProto,
    init: &BTreeMap<&str, &TensorProto>,
    producer: &BTreeMap<&str, &NodeProto>,
) -> Option<Product> {
    n.output.first()?;
    let a_dq = producer.get(n.input[0].as_str())?;
    let w_dq = producer.get(n.input[1].as_str())?;
    if a_dq.op_type != "DequantizeLinear" || w_dq.op_type != "DequantizeLinear" {
        return None;
    }
    // Activation: DQ(x_q, scalar scale, zero point 0) with x_q from an int8 QuantizeLinear.
    let x_q = a_dq.input.first()?;
    let q = producer.get(x_q.as_str())?;
    if q.op_type != "QuantizeLinear" || int8_scalar(q.input.get(2), init) != Some(0) {
        return None;
    }
    let a_scale = scalar_f32(a_dq.input.get(1), init)?;
    if a_dq.input.get(2).is_some() && int8_scalar(a_dq.input.get(2), init) != Some(0) {
        return None;
    }
    // Weight: DQ(w_q int8 K×N, scale per tensor or per column, zero points 0).
    let w_q = w_dq.input.first()?;
    let w = init.get(w_q.as_str())?;
    Int8s::of(w).filter(|w| w.signed)?;
    let &[_, cols] = w.dims.as_slice() else {
        return None;
    };
    let w_scale = float_values(init.get(w_dq.input.get(1)?.as_str())?)?;
    match w_scale.len() {
        1 => {}
        l if l as i64 == cols => {
            let axis = w_dq
                .attribute
                .iter()
                .find(|a| a.name == "axis")
                .map_or(1, |a| a.i);
            if axis != 1 && axis != -1 {
                return None;
            }
        }
        _ => return None,
    }
    if let Some(z) = w_dq.input.get(2) {
        let z = Int8s::of(init.get(z.as_str())?).filter(|z| z.signed)?;
        if z.len() != w_scale.len() || (0..z.len()).any(|i| z.get(i) != 0) {
            return None;
        }
    }
    Some(Product {
        x_q: x_q.clone(),
        w_q: w_q.clone(),
        scale: w_scale.iter().map(|&s| a_scale * s).collect(),
    })
}

fn rewrite_quantizers(graph: &mut GraphProto) -> usize {
    let init = initializers(graph);
    // Node index → 1/scale, for the int8 quantizers with a scalar scale and zero point 0.
    let plans: BTreeMap<usize, f32> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op_type == "QuantizeLinear" && n.output.len() == 1)
        .filter(|(_, n)| int8_scalar(n.input.get(2), &init) == Some(0))
        .filter_map(|(i, n)| Some((i, scalar_f32(n.input.get(1), &init)?.recip())))
        .filter(|(_, inv)| inv.is_finite())
        .collect();
    if plans.is_empty() {
        return 0;
    }
    let mut replace = BTreeMap::new();
    let mut inverses = Vec::with_capacity(plans.len());
    for (&i, &inv) in &plans {
        let n = &graph.node[i];
        let (Some(x), Some(out)) = (n.input.first(), n.output.first()) else {
            continue; // unreachable: the plan checked the output; QuantizeLinear has an input
        };
        let step = |s: &str| format!("{}/{s}", n.name);
        inverses.push(f32_scalar(&step("inverse_scale"), inv));
        replace.insert(
            i,
            vec![
                node(
                    &step("scale"),
                    "Mul",
                    &[x, &step("inverse_scale")],
                    &step("scaled"),
                    vec![],
                ),
                node(
                    &step("shift"),
                    "Add",
                    &[&step("scaled"), NAME_ROUNDER],
                    &step("shifted"),
                    vec![],
                ),
                node(
                    &step("round"),
                    "Sub",
                    &[&step("shifted"), NAME_ROUNDER],
                    &step("rounded"),
                    vec![],
                ),
                node(
                    &step("clip"),
                    "Clip",
                    &[&step("rounded"), NAME_LOW, NAME_HIGH],
                    &step("clipped"),
                    vec![],
                ),
                node(
                    &step("cast"),
                    "Cast",
                    &[&step("clipped")],
                    out,
                    vec![int_attribute("to", DataType::Int8 as i64)],
                ),
            ],
        );
    }
    graph.initializer.extend(inverses);
    splice(graph, replace);
    graph.initializer.extend([
        f32_scalar(NAME_ROUNDER, ROUNDER),
        f32_scalar(NAME_LOW, f32::from(i8::MIN)),
        f32_scalar(NAME_HIGH, f32::from(i8::MAX)),
    ]);
    plans.len()
}

/// Removes `DequantizeLinear` nodes whose output nothing reads any more (the weights' and the
/// activations' of rewritten products). Initializers they alone read are dropped later by
/// `fold_weight_dequantize`.
fn drop_dead_dequantizers(graph: &mut GraphProto) {
    let read: BTreeSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(graph.output.iter().map(|o| o.name.clone()))
        .collect();
    graph
        .node
        .retain(|n| n.op_type != "DequantizeLinear" || n.output.iter().any(|o| read.contains(o)));
}

/// An 8-bit signed scalar initializer's value.
fn int8_scalar(name: Option<&String>, init: &BTreeMap<&str, &TensorProto>) -> Option<i32> {
    let t = Int8s::of(init.get(name?.as_str())?).filter(|t| t.signed)?;
    (t.len() == 1).then(|| t.get(0))
}

/// A scalar f32 initializer's value.
fn scalar_f32(name: Option<&String>, init: &BTreeMap<&str, &TensorProto>) -> Option<f32> {
    match float_values(init.get(name?.as_str())?)?.as_slice() {
        &[v] => Some(v),
        _ => None,
    }
}

fn f32_scalar(name: &str, v: f32) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::Float as i32,
        float_data: vec![v],
        ..Default::default()
    }
}

pub(super) fn int_attribute(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

pub(super) fn node(
    name: &str,
    op_type: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op_type.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use tract_onnx::pb::{type_proto, TypeProto, ValueInfoProto};
    use tract_onnx::prelude::*;

    pub(in crate::inference) fn tensor(
        name: &str,
        dims: &[i64],
        data_type: DataType,
    ) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: data_type as i32,
            ..Default::default()
        }
    }

    pub(in crate::inference) fn int8(name: &str, dims: &[i64], values: &[i8]) -> TensorProto {
        let mut t = tensor(name, dims, DataType::Int8);
        t.raw_data = values.iter().map(|&v| v as u8).collect();
        t
    }

    pub(in crate::inference) fn floats(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
        let mut t = tensor(name, dims, DataType::Float);
        t.float_data = values.to_vec();
        t
    }

    pub(in crate::inference) fn model(
        nodes: Vec<NodeProto>,
        initializer: Vec<TensorProto>,
        out: &str,
    ) -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                node: nodes,
                initializer,
                input: vec![ValueInfoProto {
                    name: "x".into(),
                    r#type: Some(TypeProto {
                        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                            elem_type: DataType::Float as i32,
                            shape: None,
                        })),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                output: vec![ValueInfoProto {
                    name: out.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            opset_import: vec![tract_onnx::pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            ..Default::default()
        }
    }

    pub(in crate::inference) fn run<T: Datum + Copy>(proto: &ModelProto, x: Tensor) -> Vec<T> {
        let shape = x.shape().to_vec();
        let plan = tract_onnx::onnx()
            .model_for_proto_model(proto)
            .expect("parses")
            .with_input_fact(0, f32::fact(shape).into())
            .expect("input fact")
            .into_optimized()
            .expect("optimises")
            .into_runnable()
            .expect("runnable");
        let out = plan.run(tvec!(x.into())).expect("runs");
        let view = out[0].to_plain_array_view::<T>().expect("output type");
        view.iter().copied().collect()
    }

    pub(in crate::inference) fn ops(proto: &ModelProto) -> Vec<&str> {
        let g = proto.graph.as_ref().expect("graph");
        g.node.iter().map(|n| n.op_type.as_str()).collect()
    }

    /// x → QuantizeLinear(scale, zero point 0) → int8.
    fn quantizer(scale: f32) -> ModelProto {
        model(
            vec![node("q", "QuantizeLinear", &["x", "s", "z"], "y", vec![])],
            vec![floats("s", &[], &[scale]), int8("z", &[], &[0])],
            "y",
        )
    }

    #[test]
    fn quantizer_chain_has_the_bits_of_tracts_quantize_linear() {
        for scale in [0.063_901_2_f32, 0.007_294_236, 1.0, 0.1] {
            // Exact ties (k/2 · scale), their neighbours, the clip edges, huge values, infinities.
            let mut xs: Vec<f32> = (-600..=600)
                .flat_map(|k| {
                    let t = k as f32 * 0.5 * scale;
                    [
                        t,
                        f32::from_bits(t.to_bits() + 1),
                        f32::from_bits(t.to_bits().max(1) - 1),
                    ]
                })
                .collect();
            xs.extend([
                0.0,
                -0.0,
                1e30,
                -1e30,
                3e7,
                -3e7,
                f32::INFINITY,
                f32::NEG_INFINITY,
            ]);
            let x = tract_ndarray::Array1::from(xs.clone()).into_tensor();
            let plain = quantizer(scale);
            let mut chained = quantizer(scale);
            let rewrite = integer_products(&mut chained);
            assert_eq!(
                rewrite,
                IntegerRewrite {
                    products: 0,
                    quantizers: 1,
                    sections: 0
                }
            );
            assert_eq!(ops(&chained), ["Mul", "Add", "Sub", "Clip", "Cast"]);
            let (a, b) = (run::<i8>(&plain, x.clone()), run::<i8>(&chained, x));
            for ((x, a), b) in xs.iter().zip(a).zip(b) {
                assert_eq!(a, b, "scale {scale}, x {x}");
            }
        }
    }

    /// x (1×5×4) → Q → DQ → MatMul with DQ(w 4×3 int8, per-column scales, zero points `wz`).
    fn product(wz: [i8; 3]) -> ModelProto {
        let w: Vec<i8> = (0..12).map(|i| (i * 37 % 255 - 127) as i8).collect();
        model(
            vec![
                node(
                    "act_q",
                    "QuantizeLinear",
                    &["x", "a_s", "a_z"],
                    "x_q",
                    vec![],
                ),
                node(
                    "act_dq",
                    "DequantizeLinear",
                    &["x_q", "a_s", "a_z"],
                    "x_f",
                    vec![],
                ),
                node(
                    "w_dq",
                    "DequantizeLinear",
                    &["w", "w_s", "w_z"],
                    "w_f",
                    vec![int_attribute("axis", 1)],
                ),
                node("mm", "MatMul", &["x_f", "w_f"], "y", vec![]),
            ],
            vec![
                floats("a_s", &[], &[0.02]),
                int8("a_z", &[], &[0]),
                int8("w", &[4, 3], &w),
                floats("w_s", &[3], &[0.01, 0.003, 0.05]),
                int8("w_z", &[3], &wz),
            ],
            "y",
        )
    }

    #[test]
    fn products_in_integers_equal_the_simulated_ones() {
        let x = tract_ndarray::Array3::from_shape_fn((1, 5, 4), |(_, i, j)| {
            ((i * 4 + j) as f32 * 0.37).sin() * 2.0
        })
        .into_tensor();
        let simulated = product([0; 3]);
        let mut integer = product([0; 3]);
        assert_eq!(
            integer_products(&mut integer),
            IntegerRewrite {
                products: 1,
                quantizers: 1,
                sections: 0
            }
        );
        assert_eq!(
            ops(&integer),
            [
                "Mul",
                "Add",
                "Sub",
                "Clip",
                "Cast",
                "MatMulInteger",
                "Cast",
                "Mul"
            ]
        );
        let (a, b) = (run::<f32>(&simulated, x.clone()), run::<f32>(&integer, x));
        assert_eq!(a.len(), 15);
        for (a, b) in a.iter().zip(b) {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-3), "{a} vs {b}");
        }
        // Not all zero: the check above compares real products.
        assert!(a.iter().filter(|v| v.abs() > 1e-3).count() > 10);
    }

    #[test]
    fn asymmetric_weights_stay_simulated() {
        let mut proto = product([0, 1, 0]);
        let rewrite = integer_products(&mut proto);
        assert_eq!(rewrite.products, 0);
        assert!(ops(&proto).contains(&"MatMul"));
        assert!(!ops(&proto).contains(&"MatMulInteger"));
    }
}
