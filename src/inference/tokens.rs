//! Channel-last blocks as one token matrix.
//!
//! ConvNeXt runs each block's MLP channel-last: `Transpose(0,2,3,1)` of the N×C×H×W stream,
//! LayerNorm, the two pointwise products, `Transpose(0,3,1,2)` back. tract keeps H as a batch
//! axis of those products, so each is H products of W rows: 14 or 7 rows in the last two
//! stages, too few for its wide integer tiles (it falls back to 8×8 there).
//! [`token_matrices`] makes each such section work on N×(H·W)×C instead:
//!
//! ```text
//! Transpose(0,2,3,1)(x)  →  Transpose(0,2,1)(Reshape(x, [0, 0, -1]))
//! Transpose(0,3,1,2)(y)  →  Reshape(Transpose(0,2,1)(y), [0, -1, H, W])   (H, W from x's shape)
//! ```
//!
//! Only the layout changes; every value is computed by the same operation. A section is
//! rewritten only when everything between the two transposes works along the last axis alone:
//! element-wise operations with scalar or per-channel constants, LayerNormalization over the
//! last axis, products by a constant K×N matrix, per-tensor (de)quantization; and when nothing
//! in it is read from outside.

use std::collections::{BTreeMap, BTreeSet};

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, TensorProto};

use super::integer::{initializers, int_attribute, node, splice};

/// The largest section searched (ConvNeXt's has ~30 nodes at int8).
const MAX_SECTION: usize = 256;

const TO_CHANNEL_LAST: [i64; 4] = [0, 2, 3, 1];
const TO_CHANNEL_FIRST: [i64; 4] = [0, 3, 1, 2];

/// Rewrites every eligible channel-last section (see the module documentation); returns how
/// many.
pub(super) fn token_matrices(graph: &mut GraphProto) -> usize {
    let sections = sections(graph);
    if sections.is_empty() {
        return 0;
    }
    let mut replace: BTreeMap<usize, Vec<NodeProto>> = BTreeMap::new();
    for (k, &(first, last)) in sections.iter().enumerate() {
        let (f, l) = (&graph.node[first], &graph.node[last]);
        let (Some(x), Some(f_out), Some(y), Some(l_out)) = (
            f.input.first(),
            f.output.first(),
            l.input.first(),
            l.output.first(),
        ) else {
            continue; // unreachable: `sections` checked the arities
        };
        let p = |s: &str| format!("glioedge/tokens/{k}/{s}");
        graph.initializer.push(ints(&p("flat"), &[0, 0, -1]));
        graph.initializer.push(ints(&p("keep"), &[0, -1]));
        graph.initializer.push(ints(&p("from"), &[2]));
        graph.initializer.push(ints(&p("to"), &[4]));
        replace.insert(
            first,
            vec![
                node(
                    &p("flatten"),
                    "Reshape",
                    &[x, &p("flat")],
                    &p("flat_x"),
                    vec![],
                ),
                node(
                    &p("to_tokens"),
                    "Transpose",
                    &[&p("flat_x")],
                    f_out,
                    vec![perm(&[0, 2, 1])],
                ),
            ],
        );
        replace.insert(
            last,
            vec![
                node(&p("shape"), "Shape", &[x], &p("shape_x"), vec![]),
                node(
                    &p("hw"),
                    "Slice",
                    &[&p("shape_x"), &p("from"), &p("to")],
                    &p("hw_x"),
                    vec![],
                ),
                node(
                    &p("target"),
                    "Concat",
                    &[&p("keep"), &p("hw_x")],
                    &p("target_shape"),
                    vec![int_attribute("axis", 0)],
                ),
                node(
                    &p("to_channels"),
                    "Transpose",
                    &[y],
                    &p("channels"),
                    vec![perm(&[0, 2, 1])],
                ),
                node(
                    &p("unflatten"),
                    "Reshape",
                    &[&p("channels"), &p("target_shape")],
                    l_out,
                    vec![],
                ),
            ],
        );
    }
    splice(graph, replace);
    sections.len()
}

/// (first, last) node indices of the eligible sections.
fn sections(graph: &GraphProto) -> Vec<(usize, usize)> {
    let init = initializers(graph);
    let producer: BTreeMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut readers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for input in &n.input {
            readers.entry(input.as_str()).or_default().push(i);
        }
    }
    let outputs: BTreeSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut used = BTreeSet::new();
    let mut found = Vec::new();
    for (last, l) in graph.node.iter().enumerate() {
        if !is_transpose(l, &TO_CHANNEL_FIRST) || l.input.len() != 1 || l.output.len() != 1 {
            continue;
        }
        let Some((first, inner)) = section(graph, last, &producer, &init) else {
            continue;
        };
        let f = &graph.node[first];
        if f.input.len() != 1 || f.output.len() != 1 || !used.insert(first) {
            continue;
        }
        // Nothing inside is read from outside, nor is the section's entry.
        let members: BTreeSet<usize> = inner.iter().copied().chain([last]).collect();
        let escapes = std::iter::once(first)
            .chain(inner.iter().copied())
            .any(|i| {
                graph.node[i].output.iter().any(|o| {
                    outputs.contains(o.as_str())
                        || readers
                            .get(o.as_str())
                            .is_some_and(|r| r.iter().any(|j| !members.contains(j)))
                })
            });
        if !escapes {
            found.push((first, last));
        }
    }
    found
}

/// Walks back from the channel-first transpose at `last` to the single channel-last transpose
/// that feeds it; returns it and the nodes in between, if they all qualify.
fn section(
    graph: &GraphProto,
    last: usize,
    producer: &BTreeMap<&str, usize>,
    init: &BTreeMap<&str, &TensorProto>,
) -> Option<(usize, BTreeSet<usize>)> {
    let mut first = None;
    let mut inner = BTreeSet::new();
    let mut todo: Vec<usize> = vec![*producer.get(graph.node[last].input[0].as_str())?];
    while let Some(i) = todo.pop() {
        let n = &graph.node[i];
        if is_transpose(n, &TO_CHANNEL_LAST) {
            if first.replace(i).is_some_and(|f| f != i) {
                return None; // two entries
            }
            continue;
        }
        if !inner.insert(i) {
            continue;
        }
        if inner.len() > MAX_SECTION || !works_on_last_axis(n, init) {
            return None;
        }
        for (slot, input) in n.input.iter().enumerate() {
            if input.is_empty() {
                continue; // an omitted optional input
            }
            let constant = match (producer.get(input.as_str()), init.get(input.as_str())) {
                (Some(&j), _) => match constant_node(&graph.node[j], init) {
                    Some(dims) => dims,
                    None if is_product(n) && slot == 1 => return None, // a computed matrix
                    None => {
                        todo.push(j);
                        continue;
                    }
                },
                (None, Some(t)) => t.dims.len(),
                (None, None) => return None, // a graph input
            };
            if !constant_fits(n, slot, constant) {
                return None;
            }
        }
    }
    Some((first?, inner))
}

/// Whether `n` computes along the last axis only (or element-wise).
fn works_on_last_axis(n: &NodeProto, init: &BTreeMap<&str, &TensorProto>) -> bool {
    let attr = |name: &str| n.attribute.iter().find(|a| a.name == name);
    match n.op_type.as_str() {
        "Add" | "Sub" | "Mul" | "Div" | "Erf" | "Cast" | "Clip" => true,
        "LayerNormalization" => attr("axis").is_none_or(|a| a.i == -1),
        // The right operand must be a constant K×N matrix (checked with the inputs).
        "MatMul" | "MatMulInteger" => true,
        // Per-tensor parameters only (an `axis` would name a 4-D axis).
        "QuantizeLinear" | "DequantizeLinear" => n.input.iter().skip(1).all(|p| {
            p.is_empty()
                || init
                    .get(p.as_str())
                    .is_some_and(|t| t.dims.iter().product::<i64>() == 1)
        }),
        _ => false,
    }
}

/// The rank of a constant made by a node: a `Constant` (its `value` tensor, or a scalar or list
/// attribute) or an `Identity` of an initializer. `None` for any other node.
fn constant_node(n: &NodeProto, init: &BTreeMap<&str, &TensorProto>) -> Option<usize> {
    match n.op_type.as_str() {
        "Constant" => {
            let a = n.attribute.first()?;
            match a.name.as_str() {
                "value" => Some(a.t.as_ref()?.dims.len()),
                "value_float" | "value_int" => Some(0),
                "value_floats" | "value_ints" => Some(1),
                _ => None,
            }
        }
        "Identity" => Some(init.get(n.input.first()?.as_str())?.dims.len()),
        _ => None,
    }
}

/// Whether a constant input of this rank broadcasts the same over N×C×H×W channel-last and
/// N×(H·W)×C: a scalar or a per-channel vector, or the K×N matrix of a product.
fn constant_fits(n: &NodeProto, slot: usize, rank: usize) -> bool {
    match n.op_type.as_str() {
        _ if is_product(n) && slot == 1 => rank == 2,
        _ => rank <= 1,
    }
}

fn is_product(n: &NodeProto) -> bool {
    matches!(n.op_type.as_str(), "MatMul" | "MatMulInteger")
}

fn is_transpose(n: &NodeProto, perm: &[i64; 4]) -> bool {
    n.op_type == "Transpose"
        && n.attribute
            .iter()
            .any(|a| a.name == "perm" && a.ints.as_slice() == perm)
}

fn perm(p: &[i64]) -> AttributeProto {
    AttributeProto {
        name: "perm".into(),
        r#type: AttributeType::Ints as i32,
        ints: p.to_vec(),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: DataType::Int64 as i32,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::integer::tests::{floats, model, ops, run};
    use tract_onnx::pb::ModelProto;
    use tract_onnx::prelude::*;

    /// x (1×2×3×4) → channel-last → LayerNorm → ·w (2×5) + b → ·½ → channel-first.
    fn block(bias_dims: &[i64]) -> ModelProto {
        let mut half = floats("half", &[], &[0.5]);
        half.name = String::new();
        model(
            vec![
                node(
                    "to_last",
                    "Transpose",
                    &["x"],
                    "xl",
                    vec![perm(&TO_CHANNEL_LAST)],
                ),
                node(
                    "norm",
                    "LayerNormalization",
                    &["xl", "g", "beta"],
                    "n",
                    vec![],
                ),
                node("mm", "MatMul", &["n", "w"], "p", vec![]),
                node("bias", "Add", &["p", "b"], "pb", vec![]),
                NodeProto {
                    name: "half".into(),
                    op_type: "Constant".into(),
                    output: vec!["half".into()],
                    attribute: vec![AttributeProto {
                        name: "value".into(),
                        r#type: AttributeType::Tensor as i32,
                        t: Some(half),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                node("scale", "Mul", &["pb", "half"], "h", vec![]),
                node(
                    "to_first",
                    "Transpose",
                    &["h"],
                    "y",
                    vec![perm(&TO_CHANNEL_FIRST)],
                ),
            ],
            vec![
                floats("g", &[2], &[1.5, 0.5]),
                floats("beta", &[2], &[0.1, -0.2]),
                floats(
                    "w",
                    &[2, 5],
                    &[0.3, -1.0, 2.0, 0.7, 0.0, 1.1, 0.4, -0.6, 0.9, 2.5],
                ),
                floats(
                    "b",
                    bias_dims,
                    &[0.01, 0.02, 0.03, 0.04, 0.05][..bias_dims.iter().product::<i64>() as usize],
                ),
            ],
            "y",
        )
    }

    fn input() -> Tensor {
        tract_ndarray::Array4::from_shape_fn((1, 2, 3, 4), |(_, c, h, w)| {
            ((c * 12 + h * 4 + w) as f32 * 0.7).cos() * (1.0 + c as f32)
        })
        .into_tensor()
    }

    fn rewritten(mut proto: ModelProto) -> (usize, ModelProto) {
        let n = proto.graph.as_mut().map_or(0, token_matrices);
        (n, proto)
    }

    #[test]
    fn channel_last_section_runs_on_token_matrices_with_the_same_values() {
        let (n, tokens) = rewritten(block(&[5]));
        assert_eq!(n, 1);
        let graph = tokens.graph.as_ref().expect("graph");
        assert!(!graph
            .node
            .iter()
            .any(|n| is_transpose(n, &TO_CHANNEL_LAST) || is_transpose(n, &TO_CHANNEL_FIRST)));
        assert!(ops(&tokens).starts_with(&["Reshape", "Transpose", "LayerNormalization"]));
        let (a, b) = (
            run::<f32>(&block(&[5]), input()),
            run::<f32>(&tokens, input()),
        );
        assert_eq!(a.len(), 5 * 3 * 4);
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} vs {b}");
        }
        // Not a constant output: the comparison above sees the input.
        assert!(a.iter().any(|v| (v - a[0]).abs() > 0.1));
    }

    #[test]
    fn sections_with_other_constants_or_read_from_outside_stay() {
        // A 4-D bias broadcasts differently over N×(H·W)×C.
        assert_eq!(rewritten(block(&[1, 1, 1, 5])).0, 0);
        // The normalised tensor is also a graph output.
        let mut proto = block(&[5]);
        if let Some(g) = proto.graph.as_mut() {
            let mut extra = g.output[0].clone();
            extra.name = "n".into();
            g.output.push(extra);
        }
        assert_eq!(rewritten(proto).0, 0);
        // LayerNorm over another axis.
        let mut proto = block(&[5]);
        if let Some(g) = proto.graph.as_mut() {
            g.node[1].attribute.push(int_attribute("axis", 2));
        }
        assert_eq!(rewritten(proto).0, 0);
    }
}
