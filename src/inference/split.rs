//! The backbone cut into consecutive parts, so that a study's images can be spread over the
//! worker threads in pieces smaller than one image.
//!
//! With whole images, 9 images on 2 workers cannot take less than 5 image-times (one worker runs
//! five), so the speed-up from 1 to 2 threads is capped at 9/5 = 1.8×; on the box's 4 cores,
//! 9 images take 3 rounds, 3× at most. Cut into P parts of about equal cost, the work is 9·P
//! tasks whose last ones are the last images' final parts, which run side by side: 2 parts on
//! 2 workers end after ~4.5 image-times. [`split`] finds the cuts: points of the typed graph
//! (in evaluation order) where exactly one computed tensor is alive — in ConvNeXt every block's
//! residual output — taking those nearest to equal shares of the graph's multiply-adds. Each
//! part is a model of its own: its input is the tensor of the previous cut, its outputs are the
//! next cut's (the last part has the model's outputs); constants are copied into every part
//! that reads them. The arithmetic is that of the whole graph: the same operators on the same
//! values, in the same order.

use std::collections::HashMap;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::format_err;
use tract_onnx::tract_core::ops::konst::Const;

/// Multiply-adds of one node (0 when its operator does not say).
fn node_cost(model: &TypedModel, id: usize) -> TractResult<i64> {
    let facts = model.node_input_facts(id)?;
    let mut fma = 0;
    for (kind, n) in model.node(id).op.cost(&facts)? {
        if matches!(kind, tract_onnx::tract_core::ops::Cost::FMA(_)) {
            fma += n.to_i64().unwrap_or(0);
        }
    }
    Ok(fma)
}

/// Splits `model` into at most `parts` consecutive models (fewer when it has fewer cut points;
/// one, the model itself, when `parts` ≤ 1).
pub fn split(model: TypedModel, parts: usize) -> TractResult<Vec<TypedModel>> {
    if parts <= 1 || model.input_outlets()?.len() != 1 {
        return Ok(vec![model]);
    }
    let order = model.eval_order()?;
    // Nodes computed from constants alone: every part may hold its own copy.
    let mut constant = vec![false; model.nodes().len()];
    for &id in &order {
        let node = model.node(id);
        constant[id] = node.op_is::<Const>()
            || (!node.inputs.is_empty() && node.inputs.iter().all(|i| constant[i.node]));
    }
    // Last position at which each computed outlet is read (model outputs: past the end).
    let mut last_use: HashMap<OutletId, usize> = HashMap::new();
    for (p, &id) in order.iter().enumerate() {
        for input in &model.node(id).inputs {
            if !constant[input.node] {
                let e = last_use.entry(*input).or_insert(p);
                *e = (*e).max(p);
            }
        }
    }
    for o in model.output_outlets()? {
        last_use.insert(*o, order.len());
    }
    // Walk the order: a cut after position p is possible when the one live computed tensor is
    // the output of the node at p.
    let costs = order
        .iter()
        .map(|&id| node_cost(&model, id))
        .collect::<TractResult<Vec<i64>>>()?;
    let total: i64 = costs.iter().sum();
    if total <= 0 {
        return Ok(vec![model]);
    }
    let mut live: Vec<OutletId> = Vec::new();
    let mut done = 0i64;
    let mut candidates: Vec<(i64, usize, OutletId)> = Vec::new();
    for (p, &id) in order.iter().enumerate() {
        done += costs[p];
        live.retain(|o| last_use.get(o).is_some_and(|&l| l > p));
        if !constant[id] {
            for slot in 0..model.node(id).outputs.len() {
                let o = OutletId::new(id, slot);
                if last_use.get(&o).is_some_and(|&l| l > p) {
                    live.push(o);
                }
            }
        }
        if live.len() == 1 && live[0].node == id && done > 0 && done < total {
            candidates.push((done, p, live[0]));
        }
    }
    // For each share k/parts, the candidate nearest to it (each used once, in order).
    let mut cuts: Vec<(usize, OutletId)> = Vec::new();
    for k in 1..parts as i64 {
        let target = total * k / parts as i64;
        let best = candidates
            .iter()
            .filter(|c| cuts.last().is_none_or(|last| c.1 > last.0))
            .min_by_key(|c| (c.0 - target).abs());
        if let Some(&(_, p, o)) = best {
            cuts.push((p, o));
        }
    }
    if cuts.is_empty() {
        return Ok(vec![model]);
    }
    let mut models = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0usize;
    let mut input: Option<OutletId> = None;
    for (end, output) in cuts
        .iter()
        .map(|&(p, o)| (p + 1, Some(o)))
        .chain(std::iter::once((order.len(), None)))
    {
        models.push(part(&model, &order, &constant, start..end, input, output)?);
        start = end;
        input = output;
    }
    Ok(models)
}

/// The model of the nodes at `range` of `order`: its input is `input` (or the model's own
/// source), its output `output` (or the model's own outputs); constants it reads are copied.
fn part(
    model: &TypedModel,
    order: &[usize],
    constant: &[bool],
    range: std::ops::Range<usize>,
    input: Option<OutletId>,
    output: Option<OutletId>,
) -> TractResult<TypedModel> {
    let mut m = TypedModel::default();
    let mut map: HashMap<OutletId, OutletId> = HashMap::new();
    if let Some(i) = input {
        let fact = model.outlet_fact(i)?.clone();
        map.insert(
            i,
            m.add_source(format!("{}.cut", model.node(i.node).name), fact)?,
        );
    }
    let sources = model.input_outlets()?.to_vec();
    for (p, &id) in order.iter().enumerate() {
        // What the part reads comes before its end in the order: nothing later is needed.
        if p >= range.end {
            break;
        }
        let node = model.node(id);
        if !(range.contains(&p) || constant[id]) {
            continue;
        }
        if sources.iter().any(|s| s.node == id) {
            if input.is_none() {
                let fact = model.outlet_fact(OutletId::new(id, 0))?.clone();
                map.insert(OutletId::new(id, 0), m.add_source(&node.name, fact)?);
            }
            continue;
        }
        let inputs = node
            .inputs
            .iter()
            .map(|i| {
                map.get(i).copied().ok_or_else(|| {
                    format_err!(
                        "{}: input {i:?} is not in this part of the model",
                        node.name
                    )
                })
            })
            .collect::<TractResult<TVec<OutletId>>>()?;
        let wired = m.wire_node(&node.name, node.op.clone(), &inputs)?;
        for (slot, o) in wired.into_iter().enumerate() {
            map.insert(OutletId::new(id, slot), o);
        }
    }
    let outputs = match output {
        Some(o) => vec![o],
        None => model.output_outlets()?.to_vec(),
    };
    let outputs = outputs
        .iter()
        .map(|o| {
            map.get(o)
                .copied()
                .ok_or_else(|| format_err!("output {o:?} is not computed by this part"))
        })
        .collect::<TractResult<Vec<OutletId>>>()?;
    m.select_output_outlets(&outputs)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::depthwise::DepthwiseSame;
    use tract_onnx::tract_core::ops::math::add;

    /// x → four 3×3 depthwise convolutions → y, with a skip connection from x to the last
    /// convolution's input when `skip`.
    fn chain(skip: bool) -> TypedModel {
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([1, 2, 6, 5])).expect("source");
        let mut y = x;
        for i in 0..4 {
            let k: Vec<f32> = (0..18)
                .map(|j| ((i * 18 + j) % 7) as f32 / 7.0 - 0.4)
                .collect();
            let k = m
                .add_const(
                    format!("k{i}"),
                    Tensor::from_shape(&[2, 1, 3, 3], &k).expect("k"),
                )
                .expect("const");
            let b = m
                .add_const(format!("b{i}"), tensor1(&[0.1f32 * i as f32, -0.2]))
                .expect("const");
            if skip && i == 3 {
                y = m.wire_node("skip", add(), &[y, x]).expect("add")[0];
            }
            y = m
                .wire_node(format!("dw{i}"), DepthwiseSame { k: 3 }, &[y, k, b])
                .expect("dw")[0];
        }
        m.select_output_outlets(&[y]).expect("outputs");
        m
    }

    fn run(models: Vec<TypedModel>) -> Vec<f32> {
        let input: Vec<f32> = (0..60).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut values = tvec!(Tensor::from_shape(&[1, 2, 6, 5], &input)
            .expect("input")
            .into_tvalue());
        for m in models {
            let plan = m
                .into_optimized()
                .expect("optimises")
                .into_runnable()
                .expect("plan");
            values = plan.spawn().expect("state").run(values).expect("runs");
        }
        values[0]
            .try_as_plain_ram()
            .expect("plain")
            .as_slice::<f32>()
            .expect("f32")
            .to_vec()
    }

    #[test]
    fn a_chain_is_cut_at_equal_cost_and_computes_the_same_bits() {
        let whole = run(vec![chain(false)]);
        let halves = split(chain(false), 2).expect("splits");
        assert_eq!(halves.len(), 2);
        // Two convolutions (and their constants) on each side of the cut.
        for h in &halves {
            assert_eq!(
                h.nodes()
                    .iter()
                    .filter(|n| n.op_is::<DepthwiseSame>())
                    .count(),
                2
            );
            assert_eq!(h.input_outlets().expect("inputs").len(), 1);
        }
        assert_eq!(run(halves), whole);
        let quarters = split(chain(false), 4).expect("splits");
        assert_eq!(quarters.len(), 4);
        assert_eq!(run(quarters), whole);
        // More parts than cut points: as many as there are.
        assert_eq!(split(chain(false), 9).expect("splits").len(), 4);
    }

    #[test]
    fn a_tensor_alive_across_the_graph_leaves_no_cut_there() {
        // x is read by the last convolution: the only cut left is after the third (where
        // x + dw2 has been computed and is the one live tensor).
        let parts = split(chain(true), 2).expect("splits");
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[1]
                .nodes()
                .iter()
                .filter(|n| n.op_is::<DepthwiseSame>())
                .count(),
            1
        );
        assert_eq!(run(parts), run(vec![chain(true)]));
        assert_eq!(split(chain(true), 1).expect("one part").len(), 1);
    }
}
