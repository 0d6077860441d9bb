//! Radiomics speed on the BraTS case (release build: `cargo bench --bench radiomics`).
//!
//! Times `read_nifti` (image + mask) + `extract` with the settings embedded in the PyRadiomics
//! reference JSONs (PyRadiomics 3.1.0 medians on a shared 2-core VM: 7.7 s default, 24 s
//! resampled + wavelet + LoG). Prints the median of several runs and the speed-up.
//! `GLIOEDGE_BENCH_RUNS` sets the number of runs (default 5).

use std::path::PathBuf;
use std::time::Instant;

use glioedge::radiomics::provider::PyRadiomicsFilters;
use glioedge::radiomics::{extract, Params};
use glioedge::volume::read_nifti;

fn data_dir() -> PathBuf {
    std::env::var_os("GLIOEDGE_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

fn main() {
    let data = data_dir();
    let runs: usize = std::env::var("GLIOEDGE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    for (file, pyradiomics_s) in [
        ("pyradiomics_brats_t1c_union_default.json", 7.73),
        (
            "pyradiomics_brats_t1c_union_resampled_wavelet_log.json",
            23.99,
        ),
    ] {
        let path = data.join("reference").join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!(
                "skipping {}: not readable (set GLIOEDGE_TEST_DATA)",
                path.display()
            );
            continue;
        };
        let json: serde_json::Value = match serde_json::from_str(&text) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("skipping {file}: {e}");
                continue;
            }
        };
        let params = match json["settings_yaml"].as_str().map(Params::from_yaml) {
            Some(Ok(p)) => p,
            other => {
                eprintln!("skipping {file}: settings: {other:?}");
                continue;
            }
        };
        let image = data.join(json["image"]["source_path"].as_str().unwrap_or_default());
        let mask = data.join(json["mask"]["source_path"].as_str().unwrap_or_default());
        let mut times = Vec::new();
        let mut outcome = String::new();
        let mut ran = false;
        for _ in 0..runs {
            let t = Instant::now();
            let result = read_nifti(&image, 1 << 30)
                .and_then(|(i, info)| {
                    read_nifti(&mask, 1 << 30).map(|(m, _)| (i, m, info.datatype))
                })
                .map_err(|e| e.to_string())
                .and_then(|(i, m, pixel)| {
                    extract(&i, &m, &params, &PyRadiomicsFilters { pixel })
                        .map_err(|e| e.to_string())
                });
            times.push(t.elapsed().as_secs_f64());
            (ran, outcome) = match result {
                Ok(ex) => (true, format!("{} features", ex.features().len())),
                Err(e) => (false, format!("not run: {e}")),
            };
        }
        if !ran {
            println!("{file}: {outcome} (no timing reported)");
            continue;
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{file}: {outcome}; median {median:.3} s over {runs} runs (min {:.3} s); PyRadiomics {pyradiomics_s} s → {:.1}x",
            times[0],
            pyradiomics_s / median
        );
    }
}
