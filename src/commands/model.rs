//! `glioedge model info|verify PKG` and `glioedge bench inference` (`bench case` is in
//! [`super::bench`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use glioedge::config::Config;
use glioedge::error::Classify;
use glioedge::inference::{
    argmax, cosine, gradcam, pearson, Engine, EngineOptions, InferenceError, MatMulThreads,
    Precision,
};
use glioedge::model::{FileRole, ModelPackage};
use serde::Serialize;

use super::bench::{median, peak_rss_mb};

/// `glioedge model …`
#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    action: ModelAction,
}

#[derive(Debug, Subcommand)]
enum ModelAction {
    /// Show a package's manifest: name, version, intended use, sequences, heads, files.
    Info {
        /// The package folder (default: `inference.model` from the configuration).
        package: Option<PathBuf>,
    },
    /// Run the model on a case folder: slices used, head outputs, Grad-CAM extent per sequence.
    Run {
        /// The case folder.
        case_dir: PathBuf,
        /// The package folder (default: `inference.model` from the configuration).
        #[arg(long)]
        package: Option<PathBuf>,
        /// Precision (default: `inference.precision`).
        #[arg(long, value_enum)]
        precision: Option<PrecisionArg>,
    },
    /// Check a package: manifest checksum and schema, every file's size and sha256, the model
    /// decompresses and tract loads it. Exits 0 when valid, 2 with the reason when not.
    Verify {
        /// The package folder (default: `inference.model` from the configuration).
        package: Option<PathBuf>,
    },
}

/// `glioedge bench …`
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PrecisionArg {
    Int8,
    F32,
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// Per-image latency of the int8 and f32 graphs at 1 and N threads, and the scaling of
    /// 3 sequences × 3 slices across worker threads; peak RSS. Inputs: the package's goldens.
    Inference {
        /// Only this precision (default: both).
        #[arg(long, value_enum)]
        precision: Option<PrecisionArg>,
        /// Threads for the multi-threaded figures (default: `inference.threads`).
        #[arg(long)]
        threads: Option<usize>,
        /// Timed runs per figure (median reported).
        #[arg(long, default_value_t = 7)]
        iters: usize,
        /// The package folder (default: `inference.model`).
        #[arg(long)]
        package: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One case end to end as `glioedge run` does it (model loaded once, the case run
    /// `--runs` times): wall time per stage (load, radiomics, inference, fusion, report,
    /// write) and peak RSS.
    Case(super::bench::CaseArgs),
}

fn fail(e: &dyn ErrorLike) -> ExitCode {
    eprintln!("error: {}", e.message());
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    ExitCode::from(e.code())
}

trait ErrorLike {
    fn message(&self) -> String;
    fn hint(&self) -> Option<String>;
    fn code(&self) -> u8;
}

impl<E: Classify + std::fmt::Display> ErrorLike for E {
    fn message(&self) -> String {
        self.to_string()
    }
    fn hint(&self) -> Option<String> {
        Classify::hint(self)
    }
    fn code(&self) -> u8 {
        self.kind().exit_code()
    }
}

/// `glioedge model`.
pub fn model(args: ModelArgs, config: &Config) -> ExitCode {
    match args.action {
        ModelAction::Info { package } => {
            let dir = package.unwrap_or_else(|| config.inference.model.clone());
            let pkg = match ModelPackage::open(&dir) {
                Ok(p) => p,
                Err(e) => return fail(&e),
            };
            let m = &pkg.manifest;
            println!("{} {}  ({})", m.name, m.version, dir.display());
            println!("architecture: {}", m.architecture);
            println!("demo: {}", m.demo);
            println!("intended use: {}", m.intended_use);
            println!("sequences: {}", m.sequences.join(", "));
            println!(
                "input: {} {}x{}x{}; slices: {} axial (largest ROI area), margin {}, context ±{}",
                m.input.name,
                m.input.channels,
                m.input.size,
                m.input.size,
                m.slice_policy.slices,
                m.slice_policy.margin,
                m.slice_policy.context
            );
            println!(
                "normalisation: {:?} (brain > {}), clip ±{}, scale {}",
                m.normalisation.method,
                m.normalisation.brain_threshold,
                m.normalisation.clip,
                m.normalisation.scale
            );
            println!(
                "outputs: {} ({}), {} ({}x{}x{})",
                m.outputs.features,
                m.outputs.feature_dim,
                m.outputs.feature_map,
                m.outputs.feature_dim,
                m.outputs.map_size,
                m.outputs.map_size
            );
            println!("precision: int8 = {}", m.precision.int8);
            println!("           f32  = {}", m.precision.f32);
            for h in &pkg.heads {
                println!(
                    "head {}: classes [{}], fitted = {} — {}",
                    h.spec.name,
                    h.spec.classes.join(", "),
                    h.spec.fitted,
                    h.spec.description
                );
            }
            for f in &m.files {
                println!(
                    "file {:<24} {:>10} bytes  sha256 {}",
                    f.path, f.bytes, f.sha256
                );
            }
            println!("manifest sha256 {}", pkg.manifest_sha256);
            ExitCode::SUCCESS
        }
        ModelAction::Run {
            case_dir,
            package,
            precision,
        } => run_case(&case_dir, package, precision, config),
        ModelAction::Verify { package } => {
            let dir = package.unwrap_or_else(|| config.inference.model.clone());
            let pkg = match ModelPackage::open(&dir) {
                Ok(p) => p,
                Err(e) => return fail(&e),
            };
            println!(
                "{}: {} {}, {} files, checksums match",
                dir.display(),
                pkg.manifest.name,
                pkg.manifest.version,
                pkg.manifest.files.len(),
            );
            match check_goldens(&pkg) {
                Ok(lines) => {
                    for l in lines {
                        println!("{l}");
                    }
                    println!("{}: valid", dir.display());
                    ExitCode::SUCCESS
                }
                Err(GoldenError::Engine(e)) => fail(&e),
                Err(GoldenError::Mismatch(m)) => {
                    eprintln!("error: {}: {m}", dir.display());
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn run_case(
    case_dir: &std::path::Path,
    package: Option<PathBuf>,
    precision: Option<PrecisionArg>,
    config: &Config,
) -> ExitCode {
    let dir = package.unwrap_or_else(|| config.inference.model.clone());
    let pkg = match ModelPackage::open(&dir) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let files = match glioedge::case::CaseFiles::discover(case_dir) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let study = match glioedge::case::study::load_study(&files, config) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let precision = match precision {
        Some(PrecisionArg::Int8) => Precision::Int8,
        Some(PrecisionArg::F32) => Precision::F32,
        None => config.inference.precision,
    };
    let engine = match Engine::load(
        &pkg,
        EngineOptions {
            precision,
            threads: config.inference.threads,
            mm_threads: 1,
        },
    ) {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    if let Some(a) = engine.auto_choice() {
        println!(
            "auto: int8 {:.1} ms, f32 {:.1} ms per image → {}",
            a.int8_ms,
            a.f32_ms,
            engine.precision().name()
        );
    }
    let r = match engine.run_study(&study) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    println!(
        "case {}: {} ran, backbone {:.0} ms on {} threads",
        study.id,
        r.precision.name(),
        r.backbone_ms,
        engine.threads()
    );
    for s in &r.sequences {
        let sum: f64 = s.features.iter().map(|&v| f64::from(v)).sum();
        print!(
            "{:<6} slices {:?}  features Σ {sum:+.6}",
            s.sequence.name(),
            s.slices
        );
        for (name, h) in &s.heads {
            let cam = &s.gradcam[name];
            let hot = cam.data().iter().filter(|&&v| v > 0.5).count();
            print!(
                "  {name}: {} (p {:.3}, fitted {}) Grad-CAM >0.5: {hot} voxels",
                h.predicted,
                h.probabilities.last().copied().unwrap_or(f64::NAN),
                h.fitted
            );
        }
        println!();
    }
    ExitCode::SUCCESS
}

enum GoldenError {
    Engine(InferenceError),
    Mismatch(String),
}

fn floats(v: &serde_json::Value) -> Option<Vec<f32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect()
}

/// Runs the package's golden inputs through both precision variants on this CPU and compares
/// with the goldens (ONNX Runtime / torch features, torch autograd Grad-CAM).
fn check_goldens(pkg: &ModelPackage) -> Result<Vec<String>, GoldenError> {
    let mismatch = |m: String| GoldenError::Mismatch(m);
    let inputs = golden_inputs(pkg).map_err(mismatch)?;
    let path = pkg
        .path_of(FileRole::Goldens)
        .ok_or_else(|| mismatch("no goldens in the package".into()))?;
    let json: serde_json::Value = std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| mismatch(format!("{}: {e}", path.display())))?;
    let cases = json["cases"]
        .as_array()
        .ok_or_else(|| mismatch("goldens without cases".into()))?;
    let d = pkg.manifest.outputs.feature_dim;
    let s = pkg.manifest.outputs.map_size;
    let mut lines = Vec::new();
    for precision in [Precision::F32, Precision::Int8] {
        let t = Instant::now();
        let engine = Engine::load(
            pkg,
            EngineOptions {
                precision,
                threads: 2,
                mm_threads: 1,
            },
        )
        .map_err(GoldenError::Engine)?;
        let load_s = t.elapsed().as_secs_f64();
        let outs = engine.run_many(&inputs).map_err(GoldenError::Engine)?;
        for (i, (o, case)) in outs.iter().zip(cases).enumerate() {
            let get =
                |k: &str| floats(&case[k]).ok_or_else(|| mismatch(format!("golden {i}: no {k}")));
            let (refs, floor): (Vec<(&str, Vec<f32>)>, f64) = match precision {
                Precision::Int8 => (
                    vec![
                        ("ORT int8", get("ort_int8")?),
                        ("torch int8", get("torch_int8")?),
                        ("ORT fp32", get("ort_fp32")?),
                    ],
                    0.99,
                ),
                _ => (
                    vec![
                        ("ORT fp32", get("ort_fp32")?),
                        ("torch fp32", get("torch_fp32")?),
                    ],
                    0.9999,
                ),
            };
            let mut line = format!("{} input {i}: cosine", precision.name());
            for (name, r) in &refs {
                let c = cosine(&o.features, r);
                line.push_str(&format!(" vs {name} {c:.6}"));
                if c < floor {
                    return Err(mismatch(format!(
                        "{} features of golden {i}: cosine {c:.6} vs {name}, below {floor}",
                        precision.name()
                    )));
                }
            }
            let fp32 = get("ort_fp32")?;
            for h in &pkg.heads {
                let ours = argmax(&h.logits(&o.features));
                let theirs = argmax(&h.logits(&fp32));
                if ours != theirs {
                    return Err(mismatch(format!(
                        "{} golden {i}: head {} predicts class {ours}, fp32 reference {theirs}",
                        precision.name(),
                        h.spec.name
                    )));
                }
                if h.spec.fitted {
                    // The torch goldens were made with the seeded, unfitted heads; a head fitted
                    // by `glioedge fit` has none.
                    line.push_str(&format!(
                        "; head {} fitted: no Grad-CAM golden",
                        h.spec.name
                    ));
                    continue;
                }
                let g = &case["heads"][&h.spec.name];
                if let (Some(cam), Some(cls)) =
                    (floats(&g["gradcam_torch"]), g["gradcam_class"].as_u64())
                {
                    let r = pearson(
                        &gradcam(&o.feature_map, d, s, &pkg.final_norm, h, cls as usize),
                        &cam,
                    );
                    line.push_str(&format!("; Grad-CAM {} r {r:.6}", h.spec.name));
                    if precision == Precision::F32 && (r.is_nan() || r < 0.999) {
                        return Err(mismatch(format!(
                            "golden {i}: Grad-CAM of head {} r = {r:.6} vs torch autograd",
                            h.spec.name
                        )));
                    }
                }
            }
            lines.push(line);
        }
        lines.push(format!("{}: loaded in {load_s:.1} s", precision.name()));
    }
    Ok(lines)
}

#[derive(Debug, Serialize)]
struct BenchRow {
    precision: &'static str,
    load_s: f64,
    image_ms_1t: f64,
    image_ms_nt_mm: f64,
    batch9_ms_1t: f64,
    batch9_ms_nt: f64,
    batch9_scaling: f64,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    threads: usize,
    iters: usize,
    rows: Vec<BenchRow>,
    peak_rss_mb: Option<f64>,
}

fn golden_inputs(pkg: &ModelPackage) -> Result<Vec<Vec<f32>>, String> {
    let path = pkg
        .path_of(FileRole::GoldenInputs)
        .ok_or("the package has no golden inputs")?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = &pkg.manifest;
    let per = m.input.channels * m.input.size * m.input.size;
    if bytes.len() % (per * 4) != 0 || bytes.is_empty() {
        return Err(format!(
            "{}: size is not a multiple of one input",
            path.display()
        ));
    }
    let vals: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(vals.chunks(per).map(<[f32]>::to_vec).collect())
}

fn bench_one(
    pkg: &ModelPackage,
    precision: Precision,
    threads: usize,
    iters: usize,
    inputs: &[Vec<f32>],
) -> Result<BenchRow, InferenceError> {
    let t = Instant::now();
    let engine = Engine::load(
        pkg,
        EngineOptions {
            precision,
            threads: 1,
            mm_threads: 1,
        },
    )?;
    let load_s = t.elapsed().as_secs_f64();
    let time_single = |e: &Engine| -> Result<f64, InferenceError> {
        e.run_one(&inputs[0])?;
        let mut v = Vec::new();
        for i in 0..iters {
            let t = Instant::now();
            e.run_one(&inputs[i % inputs.len()])?;
            v.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(median(v))
    };
    let image_ms_1t = time_single(&engine)?;
    let batch: Vec<Vec<f32>> = (0..9).map(|i| inputs[i % inputs.len()].clone()).collect();
    let time_batch = |e: &Engine| -> Result<f64, InferenceError> {
        let mut v = Vec::new();
        for _ in 0..iters.div_ceil(3).max(2) {
            let t = Instant::now();
            e.run_many(&batch)?;
            v.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(median(v))
    };
    let batch9_ms_1t = time_batch(&engine)?;
    let batch9_ms_nt = time_batch(&engine.with_threads(threads))?;
    // Threads inside the matrix products, on the same plan (no second plan in memory).
    let mm = MatMulThreads::new(threads);
    engine.run_one_mm(&inputs[0], &mm)?;
    let mut v = Vec::new();
    for i in 0..iters {
        let t = Instant::now();
        engine.run_one_mm(&inputs[i % inputs.len()], &mm)?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let image_ms_nt_mm = median(v);
    Ok(BenchRow {
        precision: precision.name(),
        load_s,
        image_ms_1t,
        image_ms_nt_mm,
        batch9_ms_1t,
        batch9_ms_nt,
        batch9_scaling: batch9_ms_1t / batch9_ms_nt,
    })
}

/// `glioedge bench`.
pub fn bench(args: BenchArgs, config: &Config) -> ExitCode {
    let (precision, threads, iters, package, json) = match args.what {
        BenchWhat::Case(a) => return super::bench::case(&a, config),
        BenchWhat::Inference {
            precision,
            threads,
            iters,
            package,
            json,
        } => (precision, threads, iters, package, json),
    };
    let dir = package.unwrap_or_else(|| config.inference.model.clone());
    let pkg = match ModelPackage::open(&dir) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let inputs = match golden_inputs(&pkg) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let threads = threads.unwrap_or(config.inference.threads).max(1);
    let iters = iters.max(1);
    let precisions = match precision {
        Some(PrecisionArg::Int8) => vec![Precision::Int8],
        Some(PrecisionArg::F32) => vec![Precision::F32],
        None => vec![Precision::Int8, Precision::F32],
    };
    let mut rows = Vec::new();
    for p in precisions {
        match bench_one(&pkg, p, threads, iters, &inputs) {
            Ok(r) => rows.push(r),
            Err(e) => return fail(&e),
        }
    }
    let report = BenchReport {
        threads,
        iters,
        rows,
        peak_rss_mb: peak_rss_mb(),
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "tract inference bench ({}; median of {} runs; {} threads)",
        pkg.manifest.name, iters, threads
    );
    println!(
        "{:<6} {:>7} {:>12} {:>16} {:>14} {:>14} {:>8}",
        "prec", "load s", "img ms 1t", "img ms Nt(mm)", "9 imgs ms 1t", "9 imgs ms Nt", "scaling"
    );
    for r in &report.rows {
        println!(
            "{:<6} {:>7.1} {:>12.1} {:>16.1} {:>14.1} {:>14.1} {:>7.2}x",
            r.precision,
            r.load_s,
            r.image_ms_1t,
            r.image_ms_nt_mm,
            r.batch9_ms_1t,
            r.batch9_ms_nt,
            r.batch9_scaling
        );
    }
    if let Some(rss) = report.peak_rss_mb {
        println!("peak RSS {rss:.0} MB");
    }
    ExitCode::SUCCESS
}
