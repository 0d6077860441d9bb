//! Radiomics parity against PyRadiomics 3.1.0 reference outputs and the IBSI digital phantom.
//!
//! Every reference JSON embeds the parameter file it was run with; the test parses that text
//! with [`Params::from_yaml`], runs the extractor, and requires the same feature names both
//! ways and values within 1e-6 relative (original image) or 1e-4 relative (resampled or
//! filtered), 1e-9 absolute where |reference| < 1e-9. The ten worst features are printed.
//!
//! The resampled + wavelet + LoG references run through [`PyRadiomicsFilters`] (SimpleITK-exact
//! resampling, LoG and PyWavelets-exact wavelets).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use glioedge::radiomics::provider::PyRadiomicsFilters;
use glioedge::radiomics::{extract, Extraction, FilterProvider, NoFilters, Params, RadiomicsError};
use glioedge::volume::{read_nifti, StoredType};

/// The filters used for the resampled/filtered references.
fn provider(pixel: StoredType) -> PyRadiomicsFilters {
    PyRadiomicsFilters { pixel }
}

struct Reference {
    features: Vec<(String, f64)>,
    params: Params,
    image: PathBuf,
    mask: PathBuf,
}

fn load_reference(data: &Path, file: &str) -> Reference {
    let path = data.join("reference").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    let yaml = json["settings_yaml"].as_str().expect("settings_yaml");
    let params =
        Params::from_yaml(yaml).unwrap_or_else(|e| panic!("{file}: embedded settings: {e}"));
    let obj = json["features"].as_object().expect("features object");
    let features = obj
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_f64().unwrap_or_else(|| panic!("{k} is not a number")),
            )
        })
        .collect();
    let image = data.join(json["image"]["source_path"].as_str().expect("image path"));
    let mask = data.join(json["mask"]["source_path"].as_str().expect("mask path"));
    Reference {
        features,
        params,
        image,
        mask,
    }
}

fn run(
    r: &Reference,
    params: &Params,
    filters: &dyn FilterProvider,
) -> Result<Extraction, RadiomicsError> {
    let (image, _) = read_nifti(&r.image, 1 << 30).expect("image");
    let (mask, _) = read_nifti(&r.mask, 1 << 30).expect("mask");
    extract(&image, &mask, params, filters)
}

/// Compares `ours` with the reference features whose keys satisfy `keep`; returns the number
/// compared. Panics listing every failure.
fn compare(
    label: &str,
    reference: &[(String, f64)],
    ours: &Extraction,
    keep: &dyn Fn(&str) -> bool,
) -> usize {
    let want: BTreeMap<&str, f64> = reference
        .iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    let got: BTreeMap<String, f64> = ours
        .features()
        .into_iter()
        .filter(|(k, _)| keep(k))
        .collect();
    let errors: BTreeMap<String, String> = ours.errors().into_iter().collect();
    let mut problems = Vec::new();
    for k in want.keys() {
        if !got.contains_key(*k) {
            problems.push(format!(
                "missing {k} ({})",
                errors.get(*k).map_or("not computed", |s| s.as_str())
            ));
        }
    }
    for k in got.keys() {
        if !want.contains_key(k.as_str()) {
            problems.push(format!("extra {k}"));
        }
    }
    let mut worst: Vec<(f64, &str, f64, f64, f64)> = Vec::new();
    for (k, &w) in &want {
        let Some(&g) = got.get(*k) else { continue };
        let tol = if k.starts_with("original_") && !label.contains("resampled") {
            1e-6
        } else {
            1e-4
        };
        let abs = (g - w).abs();
        let rel = if w.abs() < 1e-9 { abs } else { abs / w.abs() };
        let limit = if w.abs() < 1e-9 { 1e-9 } else { tol };
        worst.push((rel / limit, k, w, g, rel));
        if rel > limit {
            problems.push(format!(
                "{k}: reference {w:e}, ours {g:e}, error {rel:.3e} > {limit:e}"
            ));
        }
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "{label}: {} features compared; 10 worst (error / tolerance):",
        worst.len()
    );
    for (ratio, k, w, g, rel) in worst.iter().take(10) {
        println!("  {k:<58} ref {w:<24e} ours {g:<24e} err {rel:.2e} ({ratio:.2e} of tol)");
    }
    assert!(
        problems.is_empty(),
        "{label}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(!want.is_empty(), "{label}: nothing compared");
    want.len()
}

fn full_check(file: &str) {
    let Some(data) = common::data_dir() else {
        return;
    };
    let r = load_reference(&data, file);
    let ex = run(&r, &r.params, &NoFilters).unwrap_or_else(|e| panic!("{file}: {e}"));
    let n = compare(file, &r.features, &ex, &|_| true);
    assert_eq!(
        n, 107,
        "{file}: expected the 107 PyRadiomics default features"
    );
}

#[test]
fn brats_t1c_default_matches_pyradiomics() {
    full_check("pyradiomics_brats_t1c_union_default.json");
}

#[test]
fn ibsi_phantom_default_matches_pyradiomics() {
    full_check("pyradiomics_ibsi_digital_phantom_default.json");
}

#[test]
fn ibsi_phantom_ibsi_settings_match_pyradiomics() {
    full_check("pyradiomics_ibsi_digital_phantom_ibsi_settings.json");
}

/// Resampled + wavelet + LoG references through the real filters, with the image file's stored
/// pixel type (SimpleITK keeps it through resampling; PyWavelets' precision follows it).
fn resampled_check(file: &str) {
    let Some(data) = common::data_dir() else {
        return;
    };
    let r = load_reference(&data, file);
    let (image, info) = read_nifti(&r.image, 1 << 30).expect("image");
    let (mask, _) = read_nifti(&r.mask, 1 << 30).expect("mask");
    let filters = provider(info.datatype);
    let ex = extract(&image, &mask, &r.params, &filters).unwrap_or_else(|e| panic!("{file}: {e}"));
    let n = compare(file, &r.features, &ex, &|_| true);
    assert_eq!(
        n,
        r.features.len(),
        "{file}: every reference feature compared"
    );
}

#[test]
fn brats_t1c_resampled_wavelet_log_through_provider() {
    resampled_check("pyradiomics_brats_t1c_union_resampled_wavelet_log.json");
}

#[test]
fn ibsi_phantom_resampled_wavelet_log_through_provider() {
    resampled_check("pyradiomics_ibsi_digital_phantom_resampled_wavelet_log.json");
}

/// Splits one CSV line (quotes allowed).
fn csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = csv_line(lines.next().expect("header"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| header.iter().cloned().zip(csv_line(l)).collect())
        .collect()
}

fn sig3(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let e = x.abs().log10().floor() as i32 - 2;
    let scale = 10f64.powi(e);
    (x / scale).round() * scale
}

#[test]
fn ibsi_digital_phantom_reference_values() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let r = load_reference(&data, "pyradiomics_ibsi_digital_phantom_ibsi_settings.json");
    let ex = run(&r, &r.params, &NoFilters).expect("extraction");
    let ours: BTreeMap<String, f64> = ex.features().into_iter().collect();
    let ibsi = read_csv(&data.join("ibsi/ibsi1_reference_values.csv"));
    let mapping = read_csv(&data.join("reference/pyradiomics_vs_ibsi_digital_phantom.csv"));
    let mut mapped = 0;
    let mut agree = 0;
    let mut disagree = Vec::new();
    for m in &mapping {
        let feature = &m["ibsi_feature"];
        if feature.is_empty() {
            continue;
        }
        let row = ibsi
            .iter()
            .find(|row| {
                row["data_set"] == "digital_phantom"
                    && &row["feature"] == feature
                    && row["aggregation"] == m["ibsi_aggregation"]
                    && row["family"] == m["ibsi_family"]
            })
            .unwrap_or_else(|| {
                panic!(
                    "no IBSI reference for {feature} ({})",
                    m["ibsi_aggregation"]
                )
            });
        let want: f64 = row["value"].parse().expect("IBSI value");
        let tol: f64 = row["tolerance"].parse().unwrap_or(0.0);
        let key = &m["pyradiomics_feature"];
        let mut got = *ours
            .get(key)
            .unwrap_or_else(|| panic!("we did not compute {key}"));
        if m["transform"] == "minus3" {
            got -= 3.0;
        }
        mapped += 1;
        if (got - want).abs() <= tol || sig3(got) == sig3(want) {
            agree += 1;
        } else {
            disagree.push(format!("{key}: ours {got} IBSI {want} ± {tol}"));
        }
    }
    println!(
        "IBSI digital phantom: {agree}/{mapped} mapped features agree; disagreeing: {disagree:?}"
    );
    assert_eq!(mapped, 102);
    assert!(agree >= 100, "only {agree}/{mapped} agree: {disagree:?}");
}
