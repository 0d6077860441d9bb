//! The ConvNeXt-Tiny backbone through tract: load and optimise once, run many.
//!
//! * [`Engine::load`] decompresses the package's int8 ONNX (checksums verified again), builds the
//!   requested precision variant and keeps the optimised plan in an `Arc`; every worker thread
//!   runs its own tract state over that one plan.
//!   - `int8`: the static QDQ graph as stored (int8 weights per channel, int8 activations per
//!     tensor), its matrix products rewritten into integer products (`MatMulInteger`, see
//!     [`integer`]) so tract runs them on its int8 kernels, each block's channel-last section
//!     computed on one token matrix ([`tokens`]); convolutions stay simulated int8.
//!   - `f32`: the same int8-stored weights dequantized once at load, with the activation
//!     Quantize/Dequantize pairs (`act_q/*`, `act_dq/*`) removed (weight-only quantization).
//!   - `auto`: both are built and timed once on this CPU; the faster is kept (logged, recorded).
//! * [`Engine::run_study`] applies the manifest's slice policy to a [`Study`] (RAS reorientation,
//!   K axial slices with the largest ROI area, square crop around the ROI bounding box plus a
//!   margin, bilinear resize, 2.5-D channels, z-score in the brain), runs every slice of every
//!   sequence across the worker threads, averages features per sequence (fixed order, f64),
//!   evaluates the heads and computes Grad-CAM analytically ([`gradcam`]) back on the study grid.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;

use crate::case::study::Study;
use crate::case::Sequence;
use crate::error::{Classify, ErrorKind};
use crate::model::{FinalNorm, Head, ModelError, ModelPackage};
use crate::volume::mask::Roi;
use crate::volume::resample::as_closest_canonical;
use crate::volume::Volume;

mod depthwise;
mod integer;
mod split;
mod tokens;

/// Which graph runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Time both at load, keep the faster.
    Auto,
    /// The static int8 QDQ graph, matrix products in integers.
    Int8,
    /// Int8-stored weights dequantized at load, fp32 activations.
    F32,
}

impl Precision {
    /// Config / CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::Int8 => "int8",
            Precision::F32 => "f32",
        }
    }

    /// Parses `auto`, `int8`, `f32`.
    pub fn from_name(s: &str) -> Option<Precision> {
        match s {
            "auto" => Some(Precision::Auto),
            "int8" => Some(Precision::Int8),
            "f32" => Some(Precision::F32),
            _ => None,
        }
    }
}

/// Problems while loading or running the engine.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The package is unusable.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// tract refused the model or failed while running it.
    #[error("tract: {context}: {message}")]
    Tract {
        /// What was being done.
        context: String,
        /// tract's message chain.
        message: String,
    },
    /// The study cannot be used for inference.
    #[error("inference on case {case}: {problem}")]
    Input {
        /// Case id.
        case: String,
        /// What is wrong.
        problem: String,
    },
}

impl Classify for InferenceError {
    fn kind(&self) -> ErrorKind {
        match self {
            InferenceError::Model(e) => e.kind(),
            InferenceError::Tract { .. } => ErrorKind::Internal,
            InferenceError::Input { .. } => ErrorKind::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            InferenceError::Model(e) => e.hint(),
            _ => None,
        }
    }
}

fn tract_err(context: impl Into<String>) -> impl FnOnce(TractError) -> InferenceError {
    let context = context.into();
    move |e| InferenceError::Tract {
        context,
        message: format!("{e:#}"),
    }
}

/// How to build the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Precision variant.
    pub precision: Precision,
    /// Worker threads for slice-level parallelism (each with its own tract state); ≥ 1.
    pub threads: usize,
    /// Threads inside each matrix product (tract-linalg `multithread-mm`); 1 = off.
    pub mm_threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            precision: Precision::Auto,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mm_threads: 1,
        }
    }
}

/// What `auto` measured.
#[derive(Debug, Clone, Serialize)]
pub struct AutoChoice {
    /// ms per image, int8 graph.
    pub int8_ms: f64,
    /// ms per image, f32 graph.
    pub f32_ms: f64,
}

/// One backbone output.
#[derive(Debug, Clone)]
pub struct BackboneOutput {
    /// Pooled, normalised features (D).
    pub features: Vec<f32>,
    /// Last feature map (D×S×S, channel-major).
    pub feature_map: Vec<f32>,
}

/// A head's output.
#[derive(Debug, Clone, Serialize)]
pub struct HeadOutput {
    /// Logits per class.
    pub logits: Vec<f64>,
    /// Softmax probabilities.
    pub probabilities: Vec<f64>,
    /// The arg-max class name.
    pub predicted: String,
    /// Whether the head's weights were fitted (false: the seeded, unfitted weights of a backbone package).
    pub fitted: bool,
}

/// Per-sequence result.
#[derive(Debug, Clone)]
pub struct SequenceInference {
    /// The sequence.
    pub sequence: Sequence,
    /// Axial slice indices used (on the RAS-reoriented grid, ascending).
    pub slices: Vec<usize>,
    /// Mean of the slices' features.
    pub features: Vec<f32>,
    /// Heads evaluated on `features`.
    pub heads: BTreeMap<String, HeadOutput>,
    /// Grad-CAM per head (class = the head's last class), on the study grid, scaled to [0, 1].
    pub gradcam: BTreeMap<String, Volume>,
}

/// The whole study.
#[derive(Debug, Clone)]
pub struct StudyInference {
    /// Which graph ran.
    pub precision: Precision,
    /// Sequences in manifest order (those the study has).
    pub sequences: Vec<SequenceInference>,
    /// Wall time of the backbone runs, ms.
    pub backbone_ms: f64,
}

type Plan = Arc<TypedRunnableModel>;

/// The backbone's parts ([`split`]): run one after the other for an image.
type Parts = Arc<[Plan]>;

/// Parts the backbone is cut into: enough to keep the box's 4 cores busy to the end of a
/// study's 3 × 3 images (see [`split`]).
const PARTS: usize = 4;

/// A pool of threads for tract's matrix products (`multithread-mm`), built once and reused.
#[derive(Debug, Clone)]
pub struct MatMulThreads(tract_linalg::multithread::Executor);

impl MatMulThreads {
    /// `n` threads (1 = single-threaded products).
    pub fn new(n: usize) -> MatMulThreads {
        MatMulThreads(if n > 1 {
            tract_linalg::multithread::Executor::multithread(n)
        } else {
            tract_linalg::multithread::Executor::SingleThread
        })
    }
}

/// The loaded model.
#[derive(Debug, Clone)]
pub struct Engine {
    parts: Parts,
    precision: Precision,
    threads: usize,
    package: Arc<ModelPackage>,
    auto: Option<AutoChoice>,
}

/// Removes the activation Quantize/Dequantize pairs (nodes named `act_q/*`, `act_dq/*`).
fn strip_activation_qdq(proto: &mut tract_onnx::pb::ModelProto) -> usize {
    let Some(graph) = proto.graph.as_mut() else {
        return 0;
    };
    let mut rename: BTreeMap<String, String> = BTreeMap::new();
    let q_input: BTreeMap<String, String> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "QuantizeLinear" && n.name.starts_with("act_q/"))
        .filter_map(|n| Some((n.output.first()?.clone(), n.input.first()?.clone())))
        .collect();
    for n in &graph.node {
        if n.op_type == "DequantizeLinear" && n.name.starts_with("act_dq/") {
            if let (Some(i), Some(o)) = (n.input.first(), n.output.first()) {
                if let Some(src) = q_input.get(i) {
                    rename.insert(o.clone(), src.clone());
                }
            }
        }
    }
    let before = graph.node.len();
    graph
        .node
        .retain(|n| !(n.name.starts_with("act_q/") || n.name.starts_with("act_dq/")));
    for n in &mut graph.node {
        for i in &mut n.input {
            if let Some(r) = rename.get(i) {
                *i = r.clone();
            }
        }
    }
    before - graph.node.len()
}

/// Replaces every `DequantizeLinear` whose inputs are all initializers (the int8-stored
/// weights) by an f32 initializer holding its result, so tract sees constant f32 weights and
/// packs them once while optimising. tract folds such a node itself only when the f32 result
/// fits its 4 MB constant-folding budget; the larger weights (ConvNeXt's last stage) were
/// otherwise cast, scaled and packed again on every image. The values are those tract
/// computes: `(f32(q) - f32(zero_point)) * scale`, per element of the quantization axis.
/// Returns the number of nodes folded.
fn fold_weight_dequantize(proto: &mut tract_onnx::pb::ModelProto) -> Result<usize, InferenceError> {
    let Some(graph) = proto.graph.as_mut() else {
        return Ok(0);
    };
    let index: BTreeMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut folded = Vec::new();
    let mut keep = Vec::with_capacity(graph.node.len());
    // Each node is dequantized on its own (in parallel); they are collected in graph order.
    let nodes = std::mem::take(&mut graph.node);
    let done: Vec<_> = nodes
        .par_iter()
        .map(|node| dequantized(node, &graph.initializer, &index))
        .collect();
    for (node, result) in nodes.into_iter().zip(done) {
        match result {
            Ok(Some(t)) => folded.push(t),
            Ok(None) => keep.push(node),
            Err(problem) => {
                return Err(InferenceError::Tract {
                    context: "dequantizing the weights at load".into(),
                    message: format!("ONNX node {:?} (DequantizeLinear): {problem}", node.name),
                })
            }
        }
    }
    graph.node = keep;
    let n = folded.len();
    // Initializers no node reads any more (the int8 weights, scales, zero points) are dropped.
    let used: std::collections::BTreeSet<&String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .chain(graph.output.iter().map(|o| &o.name))
        .collect();
    let initializers = std::mem::take(&mut graph.initializer);
    let mut initializers: Vec<_> = initializers
        .into_iter()
        .filter(|t| used.contains(&t.name))
        .collect();
    initializers.extend(folded);
    graph.initializer = initializers;
    Ok(n)
}

/// The f32 initializer a `DequantizeLinear` node evaluates to when its inputs are all 8-bit
/// initializers; `None` for any other node (left to tract).
fn dequantized(
    node: &tract_onnx::pb::NodeProto,
    initializers: &[tract_onnx::pb::TensorProto],
    index: &BTreeMap<String, usize>,
) -> Result<Option<tract_onnx::pb::TensorProto>, String> {
    use tract_onnx::pb::tensor_proto::DataType;
    if node.op_type != "DequantizeLinear" || !(2..=3).contains(&node.input.len()) {
        return Ok(None);
    }
    let Some(inputs) = node
        .input
        .iter()
        .map(|i| index.get(i).map(|&k| &initializers[k]))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let Some(output) = node.output.first() else {
        return Ok(None);
    };
    // The weights are read straight from the protobuf (no widened copy of 28 M values).
    let Some(q) = Int8s::of(inputs[0]) else {
        return Ok(None);
    };
    let len = q.len();
    let scale = float_values(inputs[1]).ok_or("the scale is not float")?;
    let zero = match inputs.get(2) {
        Some(z) => Int8s::of(z)
            .map(|z| (0..z.len()).map(|i| z.get(i)).collect::<Vec<_>>())
            .ok_or("the zero point is not 8-bit")?,
        None => vec![0],
    };
    let dims = inputs[0]
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| "a negative dimension"))
        .collect::<Result<Vec<usize>, _>>()?;
    if dims.iter().product::<usize>() != len {
        return Err("the weight's dims do not match its data".into());
    }
    // Per tensor (one scale), or per axis (one scale per index along `axis`, default 1).
    let (stride, count) = if scale.len() == 1 && zero.len() == 1 {
        (len.max(1), 1)
    } else {
        let axis = node
            .attribute
            .iter()
            .find(|a| a.name == "axis")
            .map_or(1, |a| a.i);
        let axis = if axis < 0 {
            axis + dims.len() as i64
        } else {
            axis
        };
        let axis = usize::try_from(axis)
            .ok()
            .filter(|&a| a < dims.len())
            .ok_or("the axis is out of range")?;
        if scale.len() != dims[axis] || zero.len() != dims[axis] {
            return Err("the per-axis scale or zero point does not match the axis".into());
        }
        (dims[axis + 1..].iter().product::<usize>(), dims[axis])
    };
    // `len` = (dims before the axis) × count × stride: walk it in that order.
    let mut float_data = Vec::with_capacity(len);
    while float_data.len() < len {
        for c in 0..count {
            let (z, s) = (zero[c] as f32, scale[c]);
            for _ in 0..stride {
                float_data.push((q.get(float_data.len()) as f32 - z) * s);
            }
        }
    }
    Ok(Some(tract_onnx::pb::TensorProto {
        dims: inputs[0].dims.clone(),
        data_type: DataType::Float as i32,
        float_data,
        name: output.clone(),
        ..Default::default()
    }))
}

/// An int8/uint8 initializer, read in place (raw bytes or `int32_data`).
struct Int8s<'a> {
    t: &'a tract_onnx::pb::TensorProto,
    signed: bool,
}

impl<'a> Int8s<'a> {
    fn of(t: &'a tract_onnx::pb::TensorProto) -> Option<Int8s<'a>> {
        use tract_onnx::pb::tensor_proto::DataType;
        let signed = match DataType::try_from(t.data_type).ok()? {
            DataType::Int8 => true,
            DataType::Uint8 => false,
            _ => return None,
        };
        Some(Int8s { t, signed })
    }

    fn len(&self) -> usize {
        if self.t.raw_data.is_empty() {
            self.t.int32_data.len()
        } else {
            self.t.raw_data.len()
        }
    }

    fn get(&self, i: usize) -> i32 {
        match self.t.raw_data.get(i) {
            Some(&b) if self.signed => b as i8 as i32,
            Some(&b) => b as i32,
            None => self.t.int32_data[i],
        }
    }
}

/// The values of a float initializer (raw little-endian bytes or `float_data`).
fn float_values(t: &tract_onnx::pb::TensorProto) -> Option<Vec<f32>> {
    use tract_onnx::pb::tensor_proto::DataType;
    if DataType::try_from(t.data_type).ok()? != DataType::Float {
        return None;
    }
    if !t.raw_data.is_empty() {
        if t.raw_data.len() % 4 != 0 {
            return None;
        }
        Some(
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    } else {
        Some(t.float_data.clone())
    }
}

/// Parses the protobuf into a tract model with the input shape fixed (tensors are copied out
/// of the protobuf, which the caller may drop afterwards).
fn parse(
    proto: &tract_onnx::pb::ModelProto,
    pkg: &ModelPackage,
) -> Result<InferenceModel, InferenceError> {
    let m = &pkg.manifest;
    let shape = [1, m.input.channels, m.input.size, m.input.size];
    tract_onnx::onnx()
        .model_for_proto_model(proto)
        .map_err(tract_err("parsing the ONNX model"))?
        .with_input_fact(0, f32::fact(shape).into())
        .map_err(tract_err("setting the input shape"))
}

fn optimise(
    model: InferenceModel,
    mm_threads: usize,
    parts: usize,
) -> Result<Parts, InferenceError> {
    let mut model = model.into_typed().map_err(tract_err("typing the model"))?;
    let depthwise = depthwise::replace_depthwise(&mut model)
        .map_err(tract_err("replacing depthwise convolutions"))?;
    let parts = split::split(model, parts).map_err(tract_err("cutting the model into parts"))?;
    tracing::debug!(
        depthwise,
        parts = parts.len(),
        "depthwise convolutions on glioedge's op; backbone cut into parts"
    );
    let mut opts = RunOptions::default();
    if mm_threads > 1 {
        opts.executor = Some(multithread::Executor::multithread(mm_threads));
    }
    let mut plans = Vec::with_capacity(parts.len());
    for part in parts {
        let part = part
            .into_optimized()
            .map_err(tract_err("optimising the model"))?;
        log_kernels(&part);
        plans.push(
            part.into_runnable_with_options(&opts)
                .map_err(tract_err("making the model runnable"))?,
        );
    }
    Ok(plans.into())
}

/// Logs (debug, `GLIOEDGE_LOG=glioedge::inference=debug`) which matrix-multiply kernels tract
/// picked for this CPU, with how many products use each — e.g. `arm64simd_mmm_f32_…` on the box,
/// `fma_mmm_f32_…` on x86_64: the proof that the native SIMD path runs (tract itself only logs
/// the CPU kind and kernel tiers).
fn log_kernels(model: &TypedModel) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    use tract_linalg::mmm::MatMatMul;
    use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;
    let mut kernels: BTreeMap<String, usize> = BTreeMap::new();
    for node in model.nodes() {
        if let Some(op) = node.op_as::<OptMatMul>() {
            for k in &op.mmm {
                *kernels
                    .entry(MatMatMul::name(&**k).to_string())
                    .or_default() += 1;
            }
        }
    }
    let list = kernels
        .iter()
        .map(|(k, n)| format!("{k} x{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    tracing::debug!("tract matrix kernels selected: {list}");
}

impl Engine {
    /// Loads the package's model in the requested precision.
    pub fn load(pkg: &ModelPackage, opts: EngineOptions) -> Result<Engine, InferenceError> {
        Engine::load_in_parts(pkg, opts, PARTS)
    }

    /// [`Engine::load`] with the backbone cut into at most `parts` parts (1: not cut).
    fn load_in_parts(
        pkg: &ModelPackage,
        opts: EngineOptions,
        parts: usize,
    ) -> Result<Engine, InferenceError> {
        let bytes = pkg.model_bytes()?;
        let proto = tract_onnx::onnx()
            .proto_model_for_read(&mut &bytes[..])
            .map_err(tract_err("reading the ONNX protobuf"))?;
        drop(bytes);
        let package = Arc::new(pkg.clone());
        let threads = opts.threads.max(1);
        let mm = opts.mm_threads.max(1);
        let mut proto = proto;
        // The f32 variant: no activation quantization, weights dequantized here, once.
        let strip = |p: &mut tract_onnx::pb::ModelProto| -> Result<(), InferenceError> {
            let removed = strip_activation_qdq(p);
            let folded = fold_weight_dequantize(p)?;
            tracing::debug!(
                removed,
                folded,
                "f32 variant: activation Q/DQ nodes removed, weights dequantized at load"
            );
            Ok(())
        };
        // The int8 variant: products in integers, weights of the remaining (convolution)
        // nodes dequantized here, once.
        let integer = |p: &mut tract_onnx::pb::ModelProto| -> Result<(), InferenceError> {
            let rewrite = integer::integer_products(p);
            let folded = fold_weight_dequantize(p)?;
            tracing::debug!(
                products = rewrite.products,
                quantizers = rewrite.quantizers,
                sections = rewrite.sections,
                folded,
                "int8 variant: integer matrix products, convolution weights dequantized at load"
            );
            Ok(())
        };
        // The protobuf is rewritten in place (no second copy) and dropped as soon as the plan
        // exists; `auto` keeps only the faster plan.
        let (parts, precision, auto) = match opts.precision {
            Precision::Int8 => {
                integer(&mut proto)?;
                let model = parse(&proto, pkg)?;
                drop(proto);
                (optimise(model, mm, parts)?, Precision::Int8, None)
            }
            Precision::F32 => {
                strip(&mut proto)?;
                let model = parse(&proto, pkg)?;
                drop(proto);
                (optimise(model, mm, parts)?, Precision::F32, None)
            }
            Precision::Auto => {
                let input =
                    vec![0.25f32; pkg.manifest.input.channels * pkg.manifest.input.size.pow(2)];
                let mut proto8 = proto.clone();
                integer(&mut proto8)?;
                let m8 = parse(&proto8, pkg)?;
                drop(proto8);
                let p8 = optimise(m8, mm, parts)?;
                let t8 = time_parts(&p8, pkg, &input)?;
                strip(&mut proto)?;
                let m32 = parse(&proto, pkg)?;
                drop(proto);
                let p32 = optimise(m32, mm, parts)?;
                let t32 = time_parts(&p32, pkg, &input)?;
                let choice = AutoChoice {
                    int8_ms: t8,
                    f32_ms: t32,
                };
                let (plan, prec) = if t8 < t32 {
                    drop(p32);
                    (p8, Precision::Int8)
                } else {
                    drop(p8);
                    (p32, Precision::F32)
                };
                tracing::info!(
                    int8_ms = t8,
                    f32_ms = t32,
                    chosen = prec.name(),
                    "inference precision auto: kept the faster graph on this CPU"
                );
                (plan, prec, Some(choice))
            }
        };
        Ok(Engine {
            parts,
            precision,
            threads,
            package,
            auto,
        })
    }

    /// Which graph runs.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// What `auto` measured (None unless `auto` was asked for).
    pub fn auto_choice(&self) -> Option<&AutoChoice> {
        self.auto.as_ref()
    }

    /// The package.
    pub fn package(&self) -> &ModelPackage {
        &self.package
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// A copy of this engine using `threads` workers (same plan).
    pub fn with_threads(&self, threads: usize) -> Engine {
        Engine {
            threads: threads.max(1),
            ..self.clone()
        }
    }

    /// Runs one input (C×S×S, channel-major) on a fresh state.
    pub fn run_one(&self, input: &[f32]) -> Result<BackboneOutput, InferenceError> {
        let mut states = spawn_states(&self.parts)?;
        run_chain(&mut states, &self.package, input)
    }

    /// Runs one input on a fresh state with `mm_threads` threads inside each matrix product
    /// (tract-linalg `multithread-mm`), on this engine's plan: no second plan is built.
    pub fn run_one_mm(
        &self,
        input: &[f32],
        executor: &MatMulThreads,
    ) -> Result<BackboneOutput, InferenceError> {
        tract_linalg::multithread::multithread_tract_scope(executor.0.clone(), || {
            self.run_one(input)
        })
    }

    /// Runs many inputs across the worker threads; results in input order.
    ///
    /// The tasks are (image, part) pairs. A free worker starts the next image if one is left,
    /// otherwise takes the waiting part with the lowest index (then the lowest image), so the
    /// study ends with the last images' final parts running side by side rather than one
    /// worker finishing a whole image alone. Each worker has its own tract states.
    pub fn run_many(&self, inputs: &[Vec<f32>]) -> Result<Vec<BackboneOutput>, InferenceError> {
        let n = inputs.len();
        let workers = self.threads.min(n).max(1);
        let queue = Mutex::new(Queue {
            next_image: 0,
            waiting: BTreeMap::new(),
            running: 0,
            results: vec![None; n],
            failed: None,
        });
        let wake = Condvar::new();
        let lock = || {
            queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let mut states = match spawn_states(&self.parts) {
                        Ok(s) => s,
                        Err(e) => {
                            lock().fail(e);
                            wake.notify_all();
                            return;
                        }
                    };
                    loop {
                        let task = {
                            let mut q = lock();
                            loop {
                                match q.next_task(n) {
                                    Next::Task(t) => break Some(t),
                                    Next::Done => break None,
                                    Next::Wait => {
                                        q = wake
                                            .wait(q)
                                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    }
                                }
                            }
                        };
                        let Some((part, image, values)) = task else {
                            break;
                        };
                        let done = (|| {
                            let values = match values {
                                Some(v) => v,
                                None => tvec!(input_value(&self.package, &inputs[image])?),
                            };
                            let out = run_part(&mut states[part], values)?;
                            if part + 1 == states.len() {
                                Ok(Step::Done(read_outputs(&out, &self.package)?))
                            } else {
                                Ok(Step::Next(out))
                            }
                        })();
                        let mut q = lock();
                        q.running -= 1;
                        match done {
                            Ok(Step::Done(o)) => q.results[image] = Some(o),
                            Ok(Step::Next(v)) => {
                                q.waiting.insert((part + 1, image), v);
                            }
                            Err(e) => q.fail(e),
                        }
                        drop(q);
                        wake.notify_all();
                    }
                });
            }
        });
        let q = queue
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = q.failed {
            return Err(e);
        }
        q.results
            .into_iter()
            .map(|o| {
                o.ok_or_else(|| InferenceError::Tract {
                    context: "collecting results".into(),
                    message: "an input was not run (a worker thread stopped)".into(),
                })
            })
            .collect()
    }

    /// Evaluates the head `name` on features.
    pub fn head(&self, name: &str, features: &[f32]) -> Option<HeadOutput> {
        self.package.head(name).map(|h| head_output(h, features))
    }

    /// Runs the model on every sequence of the study the package names.
    pub fn run_study(&self, study: &Study) -> Result<StudyInference, InferenceError> {
        let pkg = &self.package;
        let m = &pkg.manifest;
        let t_inputs = Instant::now();
        let labels = as_closest_canonical(&study.labels);
        let roi = Roi::from_labels(&labels, &study.label_selection);
        let plan = SlicePlan::new(&roi, m).ok_or_else(|| InferenceError::Input {
            case: study.id.clone(),
            problem: "the ROI is empty".into(),
        })?;
        // The model's sequences present in the case, in the manifest's order; their inputs are
        // built in parallel (one RAS copy and two statistics passes per sequence).
        let chosen: Vec<(Sequence, &Volume)> = m
            .sequences
            .iter()
            .filter_map(|name| {
                let seq = Sequence::from_name(name)?;
                study.images.get(&seq).map(|img| (seq, img))
            })
            .collect();
        let built: Vec<Result<Vec<Vec<f32>>, InferenceError>> = chosen
            .par_iter()
            .map(|(_, img)| build_inputs(&as_closest_canonical(img), &plan, m))
            .collect();
        let mut inputs = Vec::new();
        for b in built {
            inputs.extend(b?);
        }
        let seqs: Vec<Sequence> = chosen.iter().map(|(s, _)| *s).collect();
        if seqs.is_empty() {
            return Err(InferenceError::Input {
                case: study.id.clone(),
                problem: format!(
                    "none of the model's sequences ({}) is in the case",
                    m.sequences.join(", ")
                ),
            });
        }
        let inputs_ms = t_inputs.elapsed().as_secs_f64() * 1e3;
        let t0 = Instant::now();
        let outs = self.run_many(&inputs)?;
        let backbone_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t_heads = Instant::now();
        let k = plan.slices.len();
        let d = m.outputs.feature_dim;
        let s = m.outputs.map_size;
        // Per sequence (in parallel): features averaged over the slices, heads, Grad-CAM maps.
        let per_seq = |(si, seq): (usize, Sequence)| -> Result<SequenceInference, InferenceError> {
            let outs = &outs[si * k..(si + 1) * k];
            let mut acc = vec![0f64; d];
            for o in outs {
                for (a, &f) in acc.iter_mut().zip(&o.features) {
                    *a += f64::from(f);
                }
            }
            let features: Vec<f32> = acc.iter().map(|&a| (a / k as f64) as f32).collect();
            let mut heads = BTreeMap::new();
            let mut cams = BTreeMap::new();
            for h in &pkg.heads {
                heads.insert(h.spec.name.clone(), head_output(h, &features));
                let cls = h.spec.classes.len() - 1;
                let maps: Vec<Vec<f32>> = outs
                    .iter()
                    .map(|o| gradcam(&o.feature_map, d, s, &pkg.final_norm, h, cls))
                    .collect();
                let vol = place_cams(&labels, &study.grid, &plan, &maps, s).ok_or_else(|| {
                    InferenceError::Input {
                        case: study.id.clone(),
                        problem: "singular affine".into(),
                    }
                })?;
                cams.insert(h.spec.name.clone(), vol);
            }
            Ok(SequenceInference {
                sequence: seq,
                slices: plan.slices.clone(),
                features,
                heads,
                gradcam: cams,
            })
        };
        let sequences = seqs
            .into_par_iter()
            .enumerate()
            .map(per_seq)
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        tracing::debug!(
            "inference: inputs {inputs_ms:.1} ms, backbone {backbone_ms:.1} ms ({} images), heads + Grad-CAM {:.1} ms",
            inputs.len(),
            t_heads.elapsed().as_secs_f64() * 1e3
        );
        Ok(StudyInference {
            precision: self.precision,
            sequences,
            backbone_ms,
        })
    }
}

/// What [`Engine::run_many`]'s workers share.
struct Queue {
    /// Images not started yet: `next_image..n`.
    next_image: usize,
    /// Part outputs waiting for the next part, by (next part, image).
    waiting: BTreeMap<(usize, usize), TVec<TValue>>,
    /// Tasks being run.
    running: usize,
    results: Vec<Option<BackboneOutput>>,
    failed: Option<InferenceError>,
}

/// A task: (part, image, the part's inputs — `None` for the image itself).
type Task = (usize, usize, Option<TVec<TValue>>);

enum Next {
    Task(Task),
    Wait,
    Done,
}

enum Step {
    Next(TVec<TValue>),
    Done(BackboneOutput),
}

impl Queue {
    fn next_task(&mut self, n: usize) -> Next {
        if self.failed.is_some() {
            return Next::Done;
        }
        let task = if self.next_image < n {
            self.next_image += 1;
            Some((0, self.next_image - 1, None))
        } else {
            self.waiting
                .pop_first()
                .map(|((part, image), v)| (part, image, Some(v)))
        };
        match task {
            Some(t) => {
                self.running += 1;
                Next::Task(t)
            }
            None if self.running > 0 => Next::Wait,
            None => Next::Done,
        }
    }

    fn fail(&mut self, e: InferenceError) {
        self.failed.get_or_insert(e);
        self.waiting.clear();
    }
}

fn spawn_states(parts: &[Plan]) -> Result<Vec<TypedSimpleState>, InferenceError> {
    parts
        .iter()
        .map(|p| p.spawn().map_err(tract_err("creating a state")))
        .collect()
}

fn time_parts(parts: &[Plan], pkg: &ModelPackage, input: &[f32]) -> Result<f64, InferenceError> {
    let mut states = spawn_states(parts)?;
    run_chain(&mut states, pkg, input)?;
    let mut best = f64::INFINITY;
    for _ in 0..2 {
        let t = Instant::now();
        run_chain(&mut states, pkg, input)?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(best)
}

/// One image through every part, on the caller's states.
fn run_chain(
    states: &mut [TypedSimpleState],
    pkg: &ModelPackage,
    input: &[f32],
) -> Result<BackboneOutput, InferenceError> {
    let mut values = tvec!(input_value(pkg, input)?);
    for state in states.iter_mut() {
        values = run_part(state, values)?;
    }
    read_outputs(&values, pkg)
}

fn run_part(
    state: &mut TypedSimpleState,
    values: TVec<TValue>,
) -> Result<TVec<TValue>, InferenceError> {
    state.run(values).map_err(tract_err("running the model"))
}

/// The input tensor (1×C×S×S) of one image.
fn input_value(pkg: &ModelPackage, input: &[f32]) -> Result<TValue, InferenceError> {
    let m = &pkg.manifest;
    let (c, s) = (m.input.channels, m.input.size);
    let t = tract_ndarray::Array4::from_shape_vec((1, c, s, s), input.to_vec()).map_err(|e| {
        InferenceError::Tract {
            context: "building the input tensor".into(),
            message: e.to_string(),
        }
    })?;
    Ok(Tensor::from(t).into())
}

fn read_outputs(out: &[TValue], pkg: &ModelPackage) -> Result<BackboneOutput, InferenceError> {
    let m = &pkg.manifest;
    let d = m.outputs.feature_dim;
    let ms = m.outputs.map_size;
    let get = |i: usize, len: usize| -> Result<Vec<f32>, InferenceError> {
        let v = out
            .get(i)
            .ok_or_else(|| InferenceError::Tract {
                context: "reading outputs".into(),
                message: format!("output {i} missing"),
            })?
            .to_plain_array_view::<f32>()
            .map_err(tract_err("reading outputs"))?
            .iter()
            .copied()
            .collect::<Vec<f32>>();
        if v.len() != len {
            return Err(InferenceError::Tract {
                context: "reading outputs".into(),
                message: format!("output {i} has {} values, expected {len}", v.len()),
            });
        }
        Ok(v)
    };
    Ok(BackboneOutput {
        features: get(0, d)?,
        feature_map: get(1, d * ms * ms)?,
    })
}

fn head_output(h: &Head, features: &[f32]) -> HeadOutput {
    let logits = h.logits(features);
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let probabilities: Vec<f64> = exps.iter().map(|e| e / sum).collect();
    let arg = argmax(&logits);
    HeadOutput {
        predicted: h.spec.classes[arg].clone(),
        logits,
        probabilities,
        fitted: h.spec.fitted,
    }
}

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Analytic Grad-CAM of a linear head over `LayerNorm(mean_hw(feature_map))`.
///
/// With `x` the spatial mean of the map, `x̂ = (x − μ)/σ`, `y = γ x̂ + β` and the logit
/// `l = w·y + b`: `∂l/∂x = (g − mean(g) − x̂ · mean(g x̂)) / σ` with `g = w ⊙ γ`, and
/// `∂l/∂F[c,h,w] = (∂l/∂x_c) / (S·S)`; the Grad-CAM weights are the spatial means of that,
/// and the map is `ReLU(Σ_c α_c F[c])` (S×S, row-major). Sums in f64, fixed order.
pub fn gradcam(
    feature_map: &[f32],
    d: usize,
    s: usize,
    norm: &FinalNorm,
    head: &Head,
    class: usize,
) -> Vec<f32> {
    let hw = s * s;
    let x: Vec<f64> = (0..d)
        .map(|c| {
            feature_map[c * hw..(c + 1) * hw]
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / hw as f64
        })
        .collect();
    let mu = x.iter().sum::<f64>() / d as f64;
    let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / d as f64;
    let sigma = (var + norm.eps).sqrt();
    let xh: Vec<f64> = x.iter().map(|v| (v - mu) / sigma).collect();
    let w = &head.weights[class * d..(class + 1) * d];
    let g: Vec<f64> = (0..d)
        .map(|c| f64::from(w[c]) * f64::from(norm.weight[c]))
        .collect();
    let g_mean = g.iter().sum::<f64>() / d as f64;
    let gx_mean = g.iter().zip(&xh).map(|(a, b)| a * b).sum::<f64>() / d as f64;
    let alpha: Vec<f64> = (0..d)
        .map(|c| (g[c] - g_mean - xh[c] * gx_mean) / sigma / hw as f64)
        .collect();
    (0..hw)
        .map(|p| {
            let v: f64 = (0..d)
                .map(|c| alpha[c] * f64::from(feature_map[c * hw + p]))
                .sum();
            v.max(0.0) as f32
        })
        .collect()
}

/// Where the slices come from on the RAS-reoriented grid.
#[derive(Debug, Clone)]
pub struct SlicePlan {
    /// Axial slice indices, ascending.
    pub slices: Vec<usize>,
    /// Crop centre (voxel index coordinates, i and j).
    pub centre: [f64; 2],
    /// Crop side in voxels.
    pub side: f64,
    /// Grid dims.
    pub dims: [usize; 3],
}

impl SlicePlan {
    /// K slices with the largest ROI area (ties → lower index), crop square around the ROI's
    /// in-plane bounding box plus the margin; `None` for an empty ROI.
    pub fn new(roi: &Roi, m: &crate::model::Manifest) -> Option<SlicePlan> {
        let bb = roi.bounding_box()?;
        let areas = roi.slice_areas(2);
        let mut order: Vec<usize> = (0..areas.len()).filter(|&k| areas[k] > 0).collect();
        order.sort_by(|&a, &b| areas[b].cmp(&areas[a]).then(a.cmp(&b)));
        order.truncate(m.slice_policy.slices);
        order.sort_unstable();
        let w = (bb.hi[0] - bb.lo[0]) as f64;
        let h = (bb.hi[1] - bb.lo[1]) as f64;
        let big = w.max(h);
        let side =
            (big * (1.0 + 2.0 * m.slice_policy.margin)).max(m.slice_policy.min_crop_voxels as f64);
        Some(SlicePlan {
            slices: order,
            centre: [
                (bb.lo[0] + bb.hi[0]) as f64 / 2.0 - 0.5,
                (bb.lo[1] + bb.hi[1]) as f64 / 2.0 - 0.5,
            ],
            side,
            dims: roi.dims,
        })
    }

    /// Voxel index coordinates (i, j) of output pixel (row v, column u) of an `n`-pixel side:
    /// columns run along +i, rows along −j (anterior at the top), pixel centres as in
    /// `align_corners = false`.
    fn voxel_of(&self, u: f64, v: f64, n: usize) -> (f64, f64) {
        let step = self.side / n as f64;
        let i = self.centre[0] - self.side / 2.0 + (u + 0.5) * step;
        let j = self.centre[1] + self.side / 2.0 - (v + 0.5) * step;
        (i, j)
    }
}

fn bilinear(plane: &[f32], nx: usize, ny: usize, x: f64, y: f64) -> f32 {
    let x0 = x.floor();
    let y0 = y.floor();
    let fx = x - x0;
    let fy = y - y0;
    let mut acc = 0f64;
    for (dy, wy) in [(0i64, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0i64, 1.0 - fx), (1, fx)] {
            let xi = x0 as i64 + dx;
            let yi = y0 as i64 + dy;
            if xi >= 0 && yi >= 0 && (xi as usize) < nx && (yi as usize) < ny {
                acc += wx * wy * f64::from(plane[yi as usize * nx + xi as usize]);
            }
        }
    }
    acc as f32
}

/// z-score parameters over brain voxels.
///
/// Only voxels above the threshold contribute, and they are added one by one in voxel order,
/// as a plain loop would (so the sums have the same bits). Most of a skull-stripped volume is
/// background: blocks of 16 voxels with none above the threshold are recognised by a
/// branch-free test and skipped whole.
fn brain_stats(img: &Volume, threshold: f64) -> Option<(f64, f64)> {
    const L: usize = 16;
    let above = |v: f32| f64::from(v) > threshold;
    let any_above = |c: &[f32]| c.iter().fold(false, |a, &v| a | above(v));
    let blocks = || {
        img.data()
            .chunks(L)
            .filter(move |c| any_above(c))
            .flat_map(|c| c.iter().copied().filter(|&v| above(v)))
    };
    let mut n = 0usize;
    let mut sum = 0f64;
    for v in blocks() {
        n += 1;
        sum += f64::from(v);
    }
    if n < 2 {
        return None;
    }
    let mean = sum / n as f64;
    let mut ss = 0f64;
    for v in blocks() {
        ss += (f64::from(v) - mean).powi(2);
    }
    let sd = (ss / n as f64).sqrt();
    (sd > 0.0).then_some((mean, sd))
}

/// Builds the 2.5-D input (C×S×S) for slice `k` of a RAS-reoriented image.
pub fn build_input(
    img: &Volume,
    k: usize,
    plan: &SlicePlan,
    m: &crate::model::Manifest,
) -> Result<Vec<f32>, InferenceError> {
    let stats = brain_stats(img, m.normalisation.brain_threshold).ok_or_else(no_brain)?;
    Ok(input_of(img, k, plan, m, stats))
}

/// The inputs of every slice of the plan (the brain statistics computed once per image).
pub fn build_inputs(
    img: &Volume,
    plan: &SlicePlan,
    m: &crate::model::Manifest,
) -> Result<Vec<Vec<f32>>, InferenceError> {
    let stats = brain_stats(img, m.normalisation.brain_threshold).ok_or_else(no_brain)?;
    Ok(plan
        .slices
        .iter()
        .map(|&k| input_of(img, k, plan, m, stats))
        .collect())
}

fn no_brain() -> InferenceError {
    InferenceError::Input {
        case: String::new(),
        problem: "image has no brain voxels above the normalisation threshold".into(),
    }
}

fn input_of(
    img: &Volume,
    k: usize,
    plan: &SlicePlan,
    m: &crate::model::Manifest,
    (mean, sd): (f64, f64),
) -> Vec<f32> {
    let [nx, ny, nz] = img.dims();
    let norm = &m.normalisation;
    let n = m.input.size;
    let ctx = m.slice_policy.context as i64;
    let mut out = Vec::with_capacity(m.input.channels * n * n);
    let mut plane = vec![0f32; nx * ny];
    for dk in -ctx..=ctx {
        let kk = (k as i64 + dk).clamp(0, nz as i64 - 1) as usize;
        let slab = &img.data()[kk * nx * ny..(kk + 1) * nx * ny];
        for (p, &v) in plane.iter_mut().zip(slab) {
            *p = if f64::from(v) > norm.brain_threshold {
                (((f64::from(v) - mean) / sd).clamp(-norm.clip, norm.clip) * norm.scale) as f32
            } else {
                0.0
            };
        }
        for v in 0..n {
            for u in 0..n {
                let (i, j) = plan.voxel_of(u as f64, v as f64, n);
                out.push(bilinear(&plane, nx, ny, i, j));
            }
        }
    }
    out
}

/// Upsamples each slice's S×S map onto its crop of the RAS-reoriented grid of `like` and
/// stores it in a volume on `target` (the study grid), scaled so the largest value is 1.
///
/// The RAS grid only permutes and flips the study grid's axes (as nibabel's
/// `as_closest_canonical`), so each RAS voxel maps to exactly one study voxel: the values are
/// written straight there, with no resampling pass and no second full-size volume.
/// `None` when an affine is singular.
fn place_cams(
    like: &Volume,
    target: &crate::volume::Grid,
    plan: &SlicePlan,
    maps: &[Vec<f32>],
    s: usize,
) -> Option<Volume> {
    let [nx, ny, _] = like.dims();
    let mut vol = Volume::filled(*target, 0.0);
    let tdims = target.dims;
    // RAS voxel → target voxel; identity when the grids agree.
    let to_target = if like.grid().same_as(target, 1e-6) {
        None
    } else {
        Some(target.affine.inverse()?.compose(like.affine()))
    };
    let step = plan.side / s as f64;
    // Voxels written (a voxel may be written more than once when the grids differ).
    let mut written: Vec<usize> = Vec::new();
    let x0 = plan.centre[0] - plan.side / 2.0;
    let ytop = plan.centre[1] + plan.side / 2.0;
    for (map, &k) in maps.iter().zip(&plan.slices) {
        let lo_i = x0.max(0.0).floor() as usize;
        let hi_i = ((x0 + plan.side).ceil().max(0.0) as usize).min(nx);
        let lo_j = (ytop - plan.side).max(0.0).floor() as usize;
        let hi_j = (ytop.ceil().max(0.0) as usize).min(ny);
        for j in lo_j..hi_j {
            for i in lo_i..hi_i {
                // pixel coordinates in the S×S map (align_corners = false), edge-clamped
                let u = (i as f64 - x0) / step - 0.5;
                let v = (ytop - j as f64) / step - 0.5;
                if u < -0.5 || v < -0.5 || u > s as f64 - 0.5 || v > s as f64 - 0.5 {
                    continue;
                }
                let uc = u.clamp(0.0, (s - 1) as f64);
                let vc = v.clamp(0.0, (s - 1) as f64);
                let idx = match &to_target {
                    None => vol.index(i, j, k),
                    Some(t) => {
                        let c = t.apply([i as f64, j as f64, k as f64]);
                        let r = c.map(|x| x.round());
                        if (0..3).any(|d| r[d] < 0.0 || r[d] >= tdims[d] as f64) {
                            continue;
                        }
                        vol.index(r[0] as usize, r[1] as usize, r[2] as usize)
                    }
                };
                vol.data_mut()[idx] = bilinear(map, s, s, uc, vc);
                written.push(idx);
            }
        }
    }
    // Normalised by the maximum (the rest of the volume is 0 and stays 0).
    written.sort_unstable();
    written.dedup();
    let data = vol.data_mut();
    let max = written.iter().map(|&i| data[i]).fold(0f32, f32::max);
    if max > 0.0 {
        for &i in &written {
            data[i] /= max;
        }
    }
    Some(vol)
}

/// Cosine similarity (f64).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Pearson correlation (f64).
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let mb = b.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let mut sab = 0.0;
    let mut saa = 0.0;
    let mut sbb = 0.0;
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

    #[test]
    fn brain_stats_have_the_bits_of_a_plain_two_pass_loop() {
        // A "head" in a background of zeros: runs of background longer and shorter than a
        // block, values at the threshold, a NaN, and a length that is not a multiple of 16.
        let dims = [37, 29, 11];
        let n = dims.iter().product::<usize>();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<f32> = (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let r = (state >> 40) as f32 / (1u64 << 24) as f32;
                match i % 97 {
                    0..=40 => 0.0,
                    41 => 10.0,
                    42 if i % 3 == 0 => f32::NAN,
                    _ => 3.0 + 1234.5 * r,
                }
            })
            .collect();
        let grid = crate::volume::Grid {
            dims,
            affine: crate::volume::Affine::identity(),
        };
        let img = Volume::new(grid, data.clone()).expect("shape");
        for threshold in [0.0, 10.0, 600.0] {
            let inside: Vec<f64> = data
                .iter()
                .map(|&v| f64::from(v))
                .filter(|&v| v > threshold)
                .collect();
            let mean = inside.iter().fold(0.0, |a, v| a + v) / inside.len() as f64;
            let ss = inside.iter().fold(0.0, |a, v| a + (v - mean).powi(2));
            let sd = (ss / inside.len() as f64).sqrt();
            let (m, s) = brain_stats(&img, threshold).expect("brain voxels");
            assert_eq!((m.to_bits(), s.to_bits()), (mean.to_bits(), sd.to_bits()));
        }
        assert_eq!(brain_stats(&img, 1e9), None);
    }

    fn tensor(name: &str, dims: &[i64], data_type: DataType) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: data_type as i32,
            ..Default::default()
        }
    }

    fn dq(name: &str, inputs: &[&str], output: &str, axis: Option<i64>) -> NodeProto {
        NodeProto {
            name: name.into(),
            op_type: "DequantizeLinear".into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: axis
                .map(|i| AttributeProto {
                    name: "axis".into(),
                    i,
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    fn graph_of(proto: &ModelProto) -> &GraphProto {
        proto.graph.as_ref().expect("graph")
    }

    fn initializer<'a>(proto: &'a ModelProto, name: &str) -> Option<&'a TensorProto> {
        graph_of(proto).initializer.iter().find(|t| t.name == name)
    }

    /// A 2×3 int8 weight quantized per row (raw bytes), a uint8 one per tensor (`int32_data`),
    /// and a DequantizeLinear of a graph input that must stay.
    fn model() -> ModelProto {
        let mut w = tensor("w", &[2, 3], DataType::Int8);
        w.raw_data = [-128i8, 0, 127, 5, -3, 2]
            .iter()
            .map(|&v| v as u8)
            .collect();
        let mut s = tensor("s", &[2], DataType::Float);
        s.raw_data = [0.5f32, 0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut z = tensor("z", &[2], DataType::Int8);
        z.int32_data = vec![1, -2];
        let mut u = tensor("u", &[3], DataType::Uint8);
        u.int32_data = vec![0, 128, 255];
        let mut us = tensor("us", &[], DataType::Float);
        us.float_data = vec![0.125];
        let mut uz = tensor("uz", &[], DataType::Uint8);
        uz.int32_data = vec![128];
        let graph = GraphProto {
            node: vec![
                dq("w_dq", &["w", "s", "z"], "w_f", Some(0)),
                dq("u_dq", &["u", "us", "uz"], "u_f", None),
                dq("x_dq", &["x", "us", "uz"], "x_f", None),
            ],
            initializer: vec![w, s, z, u, us, uz],
            ..Default::default()
        };
        ModelProto {
            graph: Some(graph),
            ..Default::default()
        }
    }

    #[test]
    fn weight_dequantize_nodes_become_f32_initializers_with_onnx_values() {
        let mut proto = model();
        assert_eq!(fold_weight_dequantize(&mut proto).expect("folds"), 2);
        // y = (q - zero_point) * scale, per row for `w`, per tensor for `u`.
        let w = initializer(&proto, "w_f").expect("w_f");
        assert_eq!(w.dims, [2, 3]);
        assert_eq!(w.data_type, DataType::Float as i32);
        assert_eq!(w.float_data, [-64.5, -0.5, 63.0, 1.75, -0.25, 1.0]);
        let u = initializer(&proto, "u_f").expect("u_f");
        assert_eq!(u.float_data, [-16.0, 0.0, 15.875]);
        // The node on a graph input stays, with the initializers it reads; the int8 weights and
        // their per-row parameters are gone.
        let nodes: Vec<&str> = graph_of(&proto)
            .node
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(nodes, ["x_dq"]);
        for gone in ["w", "s", "z", "u"] {
            assert!(initializer(&proto, gone).is_none(), "{gone} still there");
        }
        for kept in ["us", "uz"] {
            assert!(initializer(&proto, kept).is_some(), "{kept} dropped");
        }
    }

    #[test]
    fn malformed_weight_dequantize_is_an_error_naming_the_node() {
        let mut proto = model();
        if let Some(g) = proto.graph.as_mut() {
            g.initializer[1].raw_data.truncate(4); // one scale for two rows
        }
        let e = fold_weight_dequantize(&mut proto)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("\"w_dq\"") && e.contains("does not match the axis"),
            "{e}"
        );
    }

    /// The f32 plan of the demo package holds no 8-bit tensor at all: every weight was
    /// dequantized at load, none is cast again per image. The int8 plan multiplies int8
    /// activations by int8 weights: every pointwise product (36 in ConvNeXt-Tiny) accumulates
    /// in i32.
    #[test]
    fn plans_have_integer_products_in_int8_only_and_depthwise_on_our_op() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo-convnext-tiny");
        let pkg = ModelPackage::open(&dir).expect("demo package opens");
        let load = |p: Precision| {
            Engine::load(
                &pkg,
                EngineOptions {
                    precision: p,
                    threads: 1,
                    mm_threads: 1,
                },
            )
            .expect("engine loads")
        };
        let (f32_engine, int8_engine) = (load(Precision::F32), load(Precision::Int8));
        let nodes = |e: &Engine| -> Vec<TypedNode> {
            e.parts
                .iter()
                .flat_map(|p| p.model().nodes().to_vec())
                .collect()
        };
        let count = |e: &Engine, types: &[DatumType]| {
            nodes(e)
                .iter()
                .filter(|n| {
                    n.outputs
                        .iter()
                        .any(|o| types.contains(&o.fact.datum_type.unquantized()))
                })
                .count()
        };
        let ops = |e: &Engine, name: &str| nodes(e).iter().filter(|n| n.op.name() == name).count();
        let eight_bit = [DatumType::I8, DatumType::U8];
        assert_eq!(count(&f32_engine, &eight_bit), 0);
        assert!(count(&int8_engine, &eight_bit) > 0);
        assert_eq!(count(&f32_engine, &[DatumType::I32]), 0);
        assert!(count(&int8_engine, &[DatumType::I32]) >= 36);
        // ConvNeXt-Tiny's 18 depthwise 7x7 convolutions run on glioedge's op in both plans.
        for e in [&f32_engine, &int8_engine] {
            assert_eq!(ops(e, "GlioedgeDepthwiseSame"), 18);
            assert_eq!(ops(e, "DepthWiseConv"), 0);
        }
    }

    /// Deterministic values in [−2, 2) for a 3×224×224 input.
    fn image(seed: u64) -> Vec<f32> {
        depthwise::tests::values(3 * 224 * 224, seed)
            .into_iter()
            .map(|v| v * 2.0)
            .collect()
    }

    /// The backbone cut into parts computes the bits of the whole graph, one image at a time
    /// or many across workers, in both precisions.
    #[test]
    fn parts_give_the_bits_of_the_whole_graph() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo-convnext-tiny");
        let pkg = ModelPackage::open(&dir).expect("demo package opens");
        let inputs: Vec<Vec<f32>> = (0..5).map(image).collect();
        for precision in [Precision::F32, Precision::Int8] {
            let opts = EngineOptions {
                precision,
                threads: 2,
                mm_threads: 1,
            };
            let whole = Engine::load_in_parts(&pkg, opts, 1).expect("loads");
            let cut = Engine::load_in_parts(&pkg, opts, PARTS).expect("loads");
            assert_eq!(whole.parts.len(), 1);
            assert_eq!(cut.parts.len(), PARTS, "{precision:?}");
            let many = cut.run_many(&inputs).expect("runs");
            for (input, m) in inputs.iter().zip(&many) {
                let a = whole.run_one(input).expect("runs");
                let b = cut.run_one(input).expect("runs");
                assert_eq!(a.features, b.features, "{precision:?}");
                assert_eq!(a.feature_map, b.feature_map, "{precision:?}");
                assert_eq!(m.features, a.features, "{precision:?}: across workers");
                assert_eq!(
                    m.feature_map, a.feature_map,
                    "{precision:?}: across workers"
                );
            }
        }
    }

    /// A bad input among many is an error for the caller (naming the input tensor), the other
    /// workers stop, and nothing hangs.
    #[test]
    fn a_bad_input_fails_run_many_cleanly() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo-convnext-tiny");
        let pkg = ModelPackage::open(&dir).expect("demo package opens");
        let engine = Engine::load(
            &pkg,
            EngineOptions {
                precision: Precision::Int8,
                threads: 2,
                mm_threads: 1,
            },
        )
        .expect("loads");
        let mut inputs: Vec<Vec<f32>> = (0..4).map(image).collect();
        inputs[2].truncate(100);
        let e = engine.run_many(&inputs).expect_err("a short input fails");
        assert!(e.to_string().contains("input tensor"), "{e}");
        // The engine is still usable.
        assert_eq!(engine.run_many(&inputs[..2]).expect("runs").len(), 2);
    }
}
