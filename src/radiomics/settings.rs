//! PyRadiomics parameter files, read as they are.
//!
//! A parameter file has three sections: `imageType` (which images to compute features on),
//! `featureClass` (which families, all features or a list) and `setting` (how). Every key is
//! checked: an unknown or unsupported key is an error that names it, so a researcher never gets
//! numbers computed with a setting silently ignored. Defaults are PyRadiomics 3.1.0's.

use std::path::Path;

use serde::Serialize;
use serde_norway::Value;
use sha2::{Digest, Sha256};

use super::features::{FeatureClass, FeatureId};
use super::filters::{ImageTypeSpec, LogSigma, WaveletSpec};
use super::RadiomicsError;

/// Interpolator for `resampledPixelSpacing` (SimpleITK names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Interpolator {
    /// `sitkNearestNeighbor`
    NearestNeighbor,
    /// `sitkLinear`
    Linear,
    /// `sitkBSpline` (PyRadiomics' default)
    BSpline,
}

impl Interpolator {
    /// The SimpleITK name.
    pub fn name(self) -> &'static str {
        match self {
            Interpolator::NearestNeighbor => "sitkNearestNeighbor",
            Interpolator::Linear => "sitkLinear",
            Interpolator::BSpline => "sitkBSpline",
        }
    }

    fn parse(v: &Value) -> Result<Self, String> {
        match v {
            Value::String(s) => match s.as_str() {
                "sitkNearestNeighbor" => Ok(Interpolator::NearestNeighbor),
                "sitkLinear" => Ok(Interpolator::Linear),
                "sitkBSpline" => Ok(Interpolator::BSpline),
                other => Err(format!(
                    "unsupported interpolator '{other}' (supported: sitkBSpline, sitkLinear, sitkNearestNeighbor)"
                )),
            },
            // SimpleITK enum values: 1 = NearestNeighbor, 2 = Linear, 3 = BSpline.
            Value::Number(n) => match n.as_i64() {
                Some(1) => Ok(Interpolator::NearestNeighbor),
                Some(2) => Ok(Interpolator::Linear),
                Some(3) => Ok(Interpolator::BSpline),
                _ => Err(format!("unsupported interpolator number {n}")),
            },
            _ => Err("expected an interpolator name such as sitkBSpline".into()),
        }
    }
}

/// GLCM angle weighting (`weightingNorm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WeightingNorm {
    /// `manhattan`
    Manhattan,
    /// `euclidean`
    Euclidean,
    /// `infinity`
    Infinity,
    /// `no_weighting`
    NoWeighting,
}

/// The `setting` section with PyRadiomics semantics and defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Fixed bin width (default 25); ignored when `bin_count` is set.
    pub bin_width: f64,
    /// Fixed bin count (numpy.histogram edges), overrides the bin width.
    pub bin_count: Option<usize>,
    /// Mask label of the ROI (default 1).
    pub label: i64,
    /// Resample to this spacing (mm, x y z) before extraction.
    pub resampled_pixel_spacing: Option<[f64; 3]>,
    /// Interpolator for the image when resampling.
    pub interpolator: Interpolator,
    /// Voxels of padding kept around the ROI when cropping (default 5).
    pub pad_distance: usize,
    /// Crop to the ROI (+ padDistance) before filtering when not resampling.
    pub pre_crop: bool,
    /// Z-score the whole image (SimpleITK Normalize) before anything else.
    pub normalize: bool,
    /// Scale applied after normalisation (default 1).
    pub normalize_scale: f64,
    /// Clip normalised values to ± this many standard deviations.
    pub remove_outliers: Option<f64>,
    /// Keep only ROI voxels within [min] or [min, max] (absolute mode).
    pub resegment_range: Option<Vec<f64>>,
    /// Minimum number of ROI bounding-box dimensions larger than one voxel (1–3, default 2).
    pub minimum_roi_dimensions: usize,
    /// Minimum ROI size in voxels (an ROI of this size or smaller is rejected).
    pub minimum_roi_size: Option<usize>,
    /// Neighbour distances (infinity norm) for GLCM, GLDM, NGTDM (default [1]).
    pub distances: Vec<usize>,
    /// Texture matrices per slice (2-D); not supported yet, must be false.
    pub force2d: bool,
    /// The slice dimension for force2D (0 = axial in numpy z,y,x order).
    pub force2d_dimension: usize,
    /// Symmetrical GLCM (default true).
    #[serde(rename = "symmetricalGLCM")]
    pub symmetrical_glcm: bool,
    /// GLDM dependence cut-off alpha (default 0).
    pub gldm_a: f64,
    /// Shift added to intensities for energy, total energy and RMS (default 0).
    pub voxel_array_shift: f64,
    /// GLCM angle weighting.
    pub weighting_norm: Option<WeightingNorm>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bin_width: 25.0,
            bin_count: None,
            label: 1,
            resampled_pixel_spacing: None,
            interpolator: Interpolator::BSpline,
            pad_distance: 5,
            pre_crop: false,
            normalize: false,
            normalize_scale: 1.0,
            remove_outliers: None,
            resegment_range: None,
            minimum_roi_dimensions: 2,
            minimum_roi_size: None,
            distances: vec![1],
            force2d: false,
            force2d_dimension: 0,
            symmetrical_glcm: true,
            gldm_a: 0.0,
            voxel_array_shift: 0.0,
            weighting_norm: None,
        }
    }
}

/// The features enabled for one family.
#[derive(Debug, Clone, PartialEq)]
pub enum Enabled {
    /// All (non-deprecated) features.
    All,
    /// Only these, in parameter-file order.
    Only(Vec<FeatureId>),
}

/// A whole parameter file.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Image types in parameter-file order.
    pub image_types: Vec<ImageTypeSpec>,
    /// Families in parameter-file order.
    pub feature_classes: Vec<(FeatureClass, Enabled)>,
    /// The `setting` section.
    pub settings: Settings,
}

impl Default for Params {
    /// PyRadiomics' defaults: Original image, all 7 families, default settings.
    fn default() -> Self {
        Params {
            image_types: vec![ImageTypeSpec::Original],
            feature_classes: FeatureClass::ALL
                .iter()
                .map(|&c| (c, Enabled::All))
                .collect(),
            settings: Settings::default(),
        }
    }
}

fn bad(key: &str, msg: impl Into<String>) -> RadiomicsError {
    RadiomicsError::Setting {
        key: key.to_string(),
        problem: msg.into(),
    }
}

fn as_f64(key: &str, v: &Value) -> Result<f64, RadiomicsError> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| bad(key, "expected a finite number")),
        _ => Err(bad(key, format!("expected a number, got {}", describe(v)))),
    }
}

fn as_usize(key: &str, v: &Value) -> Result<usize, RadiomicsError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| bad(key, format!("expected a non-negative integer, got {n}"))),
        _ => Err(bad(
            key,
            format!("expected an integer, got {}", describe(v)),
        )),
    }
}

fn as_bool(key: &str, v: &Value) -> Result<bool, RadiomicsError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(bad(
            key,
            format!("expected true or false, got {}", describe(v)),
        )),
    }
}

fn as_list<'a>(key: &str, v: &'a Value) -> Result<&'a [Value], RadiomicsError> {
    match v {
        Value::Sequence(s) => Ok(s),
        _ => Err(bad(key, format!("expected a list, got {}", describe(v)))),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("'{s}'"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}

fn key_str<'a>(section: &str, k: &'a Value) -> Result<&'a str, RadiomicsError> {
    match k {
        Value::String(s) => Ok(s.as_str()),
        other => Err(RadiomicsError::UnknownKey {
            section: section.into(),
            key: describe(other),
        }),
    }
}

impl Params {
    /// Reads a PyRadiomics parameter file (YAML).
    pub fn from_file(path: &Path) -> Result<Params, RadiomicsError> {
        let text = std::fs::read_to_string(path).map_err(|source| RadiomicsError::ReadParams {
            path: path.to_path_buf(),
            source,
        })?;
        Params::from_yaml(&text).map_err(|e| RadiomicsError::InParams {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Parses parameter-file text.
    pub fn from_yaml(text: &str) -> Result<Params, RadiomicsError> {
        let doc: Value =
            serde_norway::from_str(text).map_err(|e| RadiomicsError::Yaml(e.to_string()))?;
        let map = match &doc {
            Value::Null => return Ok(Params::default()),
            Value::Mapping(m) => m,
            other => {
                return Err(RadiomicsError::Yaml(format!(
                    "the parameter file must be a mapping with imageType, featureClass and setting, not {}",
                    describe(other)
                )))
            }
        };
        let mut params = Params::default();
        let mut saw_image_type = false;
        let mut saw_feature_class = false;
        for (k, v) in map {
            match key_str("top level", k)? {
                "imageType" => {
                    saw_image_type = true;
                    params.image_types = parse_image_types(v)?;
                }
                "featureClass" => {
                    saw_feature_class = true;
                    params.feature_classes = parse_feature_classes(v)?;
                }
                "setting" => params.settings = parse_settings(v)?,
                "voxelSetting" => {
                    return Err(bad(
                        "voxelSetting",
                        "voxel-based extraction is not supported",
                    ))
                }
                other => {
                    return Err(RadiomicsError::UnknownKey {
                        section: "top level".into(),
                        key: other.into(),
                    })
                }
            }
        }
        if !saw_image_type {
            params.image_types = vec![ImageTypeSpec::Original];
        }
        if !saw_feature_class {
            params.feature_classes = FeatureClass::ALL
                .iter()
                .map(|&c| (c, Enabled::All))
                .collect();
        }
        Ok(params)
    }

    /// SHA-256 of a canonical rendering of the effective parameters (diagnostics).
    pub fn hash(&self) -> String {
        let canonical = serde_json::json!({
            "imageType": self.image_types.iter().map(image_type_json).collect::<Vec<_>>(),
            "featureClass": self.feature_classes.iter().map(|(c, e)| {
                let list = match e {
                    Enabled::All => serde_json::Value::String("all".into()),
                    Enabled::Only(v) => serde_json::Value::from(v.iter().map(|f| f.name()).collect::<Vec<_>>()),
                };
                serde_json::json!([c.name(), list])
            }).collect::<Vec<_>>(),
            "setting": &self.settings,
        });
        let mut h = Sha256::new();
        h.update(canonical.to_string().as_bytes());
        hex::encode(h.finalize())
    }

    /// Whether a family is enabled.
    pub fn enabled(&self, class: FeatureClass) -> Option<&Enabled> {
        self.feature_classes
            .iter()
            .find(|(c, _)| *c == class)
            .map(|(_, e)| e)
    }
}

fn image_type_json(t: &ImageTypeSpec) -> serde_json::Value {
    match t {
        ImageTypeSpec::Original => serde_json::json!("Original"),
        ImageTypeSpec::LoG { sigmas } => {
            serde_json::json!({"LoG": sigmas.iter().map(|s| s.name.clone()).collect::<Vec<_>>()})
        }
        ImageTypeSpec::Wavelet(w) => {
            serde_json::json!({"Wavelet": [w.wavelet, w.level, w.start_level]})
        }
    }
}

fn entries<'a>(section: &str, v: &'a Value) -> Result<Vec<(&'a str, &'a Value)>, RadiomicsError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| Ok((key_str(section, k)?, v)))
            .collect(),
        other => Err(bad(
            section,
            format!("expected a mapping, got {}", describe(other)),
        )),
    }
}

fn parse_image_types(v: &Value) -> Result<Vec<ImageTypeSpec>, RadiomicsError> {
    let mut out = Vec::new();
    for (name, body) in entries("imageType", v)? {
        let section = format!("imageType.{name}");
        let body = entries(&section, body)?;
        match name {
            "Original" => {
                if let Some((k, _)) = body.first() {
                    return Err(RadiomicsError::UnknownKey {
                        section,
                        key: (*k).into(),
                    });
                }
                out.push(ImageTypeSpec::Original);
            }
            "LoG" => {
                let mut sigmas = Vec::new();
                for (k, val) in body {
                    match k {
                        "sigma" => {
                            for s in as_list("imageType.LoG.sigma", val)? {
                                let sigma = match s {
                                    Value::Number(n) if n.is_i64() || n.is_u64() => {
                                        LogSigma::from_int(n.as_i64().unwrap_or(0))
                                    }
                                    Value::Number(n) => {
                                        LogSigma::from_float(n.as_f64().unwrap_or(f64::NAN))
                                    }
                                    other => {
                                        return Err(bad(
                                            "imageType.LoG.sigma",
                                            format!("expected numbers, got {}", describe(other)),
                                        ))
                                    }
                                };
                                if !(sigma.value.is_finite() && sigma.value > 0.0) {
                                    return Err(bad(
                                        "imageType.LoG.sigma",
                                        "every sigma must be a positive number of mm",
                                    ));
                                }
                                sigmas.push(sigma);
                            }
                        }
                        other => {
                            return Err(RadiomicsError::UnknownKey {
                                section: section.clone(),
                                key: other.into(),
                            })
                        }
                    }
                }
                if sigmas.is_empty() {
                    // PyRadiomics computes nothing for LoG without sigmas (and warns).
                    return Err(bad("imageType.LoG.sigma", "LoG needs at least one sigma"));
                }
                out.push(ImageTypeSpec::LoG { sigmas });
            }
            "Wavelet" => {
                let mut w = WaveletSpec::default();
                for (k, val) in body {
                    match k {
                        "wavelet" => match val {
                            Value::String(s) => w.wavelet = s.clone(),
                            other => {
                                return Err(bad(
                                    "imageType.Wavelet.wavelet",
                                    format!("expected a wavelet name, got {}", describe(other)),
                                ))
                            }
                        },
                        "level" => w.level = as_usize("imageType.Wavelet.level", val)?,
                        "start_level" => {
                            w.start_level = as_usize("imageType.Wavelet.start_level", val)?
                        }
                        other => {
                            return Err(RadiomicsError::UnknownKey {
                                section: section.clone(),
                                key: other.into(),
                            })
                        }
                    }
                }
                out.push(ImageTypeSpec::Wavelet(w));
            }
            "Square" | "SquareRoot" | "Logarithm" | "Exponential" | "Gradient" | "LBP2D"
            | "LBP3D" => {
                return Err(bad(
                    &format!("imageType.{name}"),
                    "this image type is not supported yet (supported: Original, LoG, Wavelet)",
                ));
            }
            other => {
                return Err(RadiomicsError::UnknownKey {
                    section: "imageType".into(),
                    key: other.into(),
                });
            }
        }
    }
    Ok(out)
}

fn parse_feature_classes(v: &Value) -> Result<Vec<(FeatureClass, Enabled)>, RadiomicsError> {
    let mut out = Vec::new();
    for (name, body) in entries("featureClass", v)? {
        let class = match FeatureClass::from_name(name) {
            Some(c) => c,
            None if name == "shape2D" => {
                return Err(bad(
                    "featureClass.shape2D",
                    "2-D shape features are not supported",
                ))
            }
            None => {
                return Err(RadiomicsError::UnknownKey {
                    section: "featureClass".into(),
                    key: name.into(),
                })
            }
        };
        let enabled = match body {
            Value::Null => Enabled::All,
            Value::Sequence(list) if list.is_empty() => Enabled::All,
            Value::Sequence(list) => {
                let mut ids = Vec::new();
                for item in list {
                    let s = match item {
                        Value::String(s) => s.as_str(),
                        other => {
                            return Err(bad(
                                &format!("featureClass.{name}"),
                                format!("expected feature names, got {}", describe(other)),
                            ))
                        }
                    };
                    match class.feature(s) {
                        Some(id) => ids.push(id),
                        None => {
                            return Err(RadiomicsError::UnknownKey {
                                section: format!("featureClass.{name}"),
                                key: s.into(),
                            })
                        }
                    }
                }
                Enabled::Only(ids)
            }
            other => {
                return Err(bad(
                    &format!("featureClass.{name}"),
                    format!(
                        "expected nothing or a list of feature names, got {}",
                        describe(other)
                    ),
                ))
            }
        };
        out.push((class, enabled));
    }
    Ok(out)
}

fn parse_settings(v: &Value) -> Result<Settings, RadiomicsError> {
    let mut s = Settings::default();
    for (key, val) in entries("setting", v)? {
        // PyRadiomics treats an explicit null as "use the default / disabled".
        let null = matches!(val, Value::Null);
        match key {
            "binWidth" => {
                let w = as_f64(key, val)?;
                if w <= 0.0 {
                    return Err(bad(key, "must be positive"));
                }
                s.bin_width = w;
            }
            "binCount" => {
                s.bin_count = if null {
                    None
                } else {
                    Some(as_usize(key, val)?)
                };
                if s.bin_count == Some(0) {
                    return Err(bad(key, "must be at least 1"));
                }
            }
            "label" => {
                s.label = match val {
                    Value::Number(n) => n
                        .as_i64()
                        .ok_or_else(|| bad(key, "expected an integer label"))?,
                    other => {
                        return Err(bad(
                            key,
                            format!("expected an integer label, got {}", describe(other)),
                        ))
                    }
                }
            }
            "resampledPixelSpacing" => {
                s.resampled_pixel_spacing = if null {
                    None
                } else {
                    let l = as_list(key, val)?;
                    if l.len() != 3 {
                        return Err(bad(key, "expected three spacings (x, y, z) in mm"));
                    }
                    let mut sp = [0.0; 3];
                    for (i, x) in l.iter().enumerate() {
                        sp[i] = as_f64(key, x)?;
                        if sp[i] < 0.0 {
                            return Err(bad(
                                key,
                                "spacings must not be negative (0 keeps the original spacing)",
                            ));
                        }
                    }
                    Some(sp)
                }
            }
            "interpolator" => s.interpolator = Interpolator::parse(val).map_err(|m| bad(key, m))?,
            "padDistance" => s.pad_distance = as_usize(key, val)?,
            "preCrop" => s.pre_crop = as_bool(key, val)?,
            "normalize" => s.normalize = as_bool(key, val)?,
            "normalizeScale" => s.normalize_scale = as_f64(key, val)?,
            "removeOutliers" => {
                s.remove_outliers = if null { None } else { Some(as_f64(key, val)?) }
            }
            "resegmentRange" => {
                s.resegment_range = if null {
                    None
                } else {
                    let l = as_list(key, val)?;
                    if l.is_empty() || l.len() > 2 {
                        return Err(bad(key, "expected [min] or [min, max]"));
                    }
                    Some(l.iter().map(|x| as_f64(key, x)).collect::<Result<_, _>>()?)
                }
            }
            "minimumROIDimensions" => {
                let d = as_usize(key, val)?;
                if !(1..=3).contains(&d) {
                    return Err(bad(key, "must be 1, 2 or 3"));
                }
                s.minimum_roi_dimensions = d;
            }
            "minimumROISize" => {
                s.minimum_roi_size = if null {
                    None
                } else {
                    Some(as_usize(key, val)?)
                }
            }
            "distances" => {
                let l = as_list(key, val)?;
                let d: Vec<usize> = l
                    .iter()
                    .map(|x| as_usize(key, x))
                    .collect::<Result<_, _>>()?;
                if d.is_empty() || d.contains(&0) {
                    return Err(bad(key, "expected a non-empty list of distances >= 1"));
                }
                s.distances = d;
            }
            "force2D" => {
                s.force2d = as_bool(key, val)?;
                if s.force2d {
                    return Err(bad(
                        key,
                        "2-D (per-slice) texture extraction is not supported yet",
                    ));
                }
            }
            "force2Ddimension" => {
                let d = as_usize(key, val)?;
                if d > 2 {
                    return Err(bad(key, "must be 0, 1 or 2"));
                }
                s.force2d_dimension = d;
            }
            "symmetricalGLCM" => s.symmetrical_glcm = as_bool(key, val)?,
            "gldm_a" => {
                s.gldm_a = as_f64(key, val)?;
                if s.gldm_a < 0.0 {
                    return Err(bad(key, "must not be negative"));
                }
            }
            "voxelArrayShift" => s.voxel_array_shift = as_f64(key, val)?,
            "weightingNorm" => {
                s.weighting_norm = match val {
                    Value::Null => None,
                    Value::String(w) => Some(match w.as_str() {
                        "manhattan" => WeightingNorm::Manhattan,
                        "euclidean" => WeightingNorm::Euclidean,
                        "infinity" => WeightingNorm::Infinity,
                        "no_weighting" => WeightingNorm::NoWeighting,
                        other => {
                            return Err(bad(
                                key,
                                format!(
                            "unknown norm '{other}' (manhattan, euclidean, infinity, no_weighting)"
                        ),
                            ))
                        }
                    }),
                    other => {
                        return Err(bad(
                            key,
                            format!("expected a norm name, got {}", describe(other)),
                        ))
                    }
                }
            }
            // Accepted and without effect on values: PyRadiomics' diagnostics switch.
            "additionalInfo" => {
                as_bool(key, val)?;
            }
            other => {
                return Err(RadiomicsError::UnknownKey {
                    section: "setting".into(),
                    key: other.into(),
                });
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_pyradiomics_file_and_names_unknown_keys() {
        let p = Params::from_yaml(
            "imageType:\n  Original: {}\n  LoG:\n    sigma: [1.0, 2, 3.5]\n  Wavelet: {}\nfeatureClass:\n  glcm: [Contrast, MCC]\n  firstorder:\nsetting:\n  binWidth: 10\n  resampledPixelSpacing: [1, 1, 1]\n  interpolator: sitkLinear\n",
        )
        .expect("valid file");
        assert_eq!(p.image_types.len(), 3);
        match &p.image_types[1] {
            ImageTypeSpec::LoG { sigmas } => {
                let names: Vec<&str> = sigmas.iter().map(|s| s.name.as_str()).collect();
                assert_eq!(
                    names,
                    [
                        "log-sigma-1-0-mm-3D",
                        "log-sigma-2-mm-3D",
                        "log-sigma-3-5-mm-3D"
                    ]
                );
            }
            other => panic!("expected LoG, got {other:?}"),
        }
        assert_eq!(p.settings.bin_width, 10.0);
        assert_eq!(p.settings.interpolator, Interpolator::Linear);
        let e = Params::from_yaml("setting:\n  binWidht: 10\n").expect_err("typo must fail");
        assert!(e.to_string().contains("binWidht"), "{e}");
        let e = Params::from_yaml("featureClass:\n  glcm: [Contrasts]\n").expect_err("bad feature");
        assert!(e.to_string().contains("Contrasts"), "{e}");
        assert_ne!(Params::default().hash(), p.hash());
    }
}
