//! The extractor: PyRadiomics' `RadiomicsFeatureExtractor.execute` as a function.
//!
//! Order of operations (as PyRadiomics 3.1.0): normalise → resample (+ crop) or pre-crop →
//! mask checks → shape on the original mask → re-segmentation → for every image type (original
//! and derived) and every enabled family, features inside the ROI. Image types and families run
//! in parallel (rayon); each feature is computed by one task with a fixed summation order, and
//! results are gathered in a fixed order, so output is bit-identical for any thread count.

use std::borrow::Cow;

use rayon::prelude::*;
use serde::Serialize;

use super::features::{FeatureClass, FeatureId};
use super::filters::ImageTypeSpec;
use super::matrices::{self, Levels, Padded};
use super::roi::{self, Cropped, Pixels, RoiBox};
use super::settings::{Enabled, Interpolator, Params, Settings};
use super::{firstorder, glcm, gldm, glrlm, glszm, ngtdm, shape, RadiomicsError};
use crate::volume::{Affine, Grid, Volume};

/// What PyRadiomics' `resampleImage` is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ResampleRequest {
    /// Target spacing in mm (x, y, z); 0 keeps that axis' spacing.
    pub spacing: [f64; 3],
    /// Interpolator for the image (the mask always uses nearest neighbour).
    pub interpolator: Interpolator,
    /// ROI label in the mask.
    pub label: i64,
    /// Voxels of padding around the ROI bounding box.
    pub pad_distance: usize,
    /// Whether to crop to the ROI (+ padding) — PyRadiomics always crops when resampling.
    pub pre_crop: bool,
}

/// Resampling and derived images, supplied by the filters module (or a test double).
pub trait FilterProvider: Sync {
    /// PyRadiomics resampling (+ pre-crop) of image and mask when `resampledPixelSpacing` is set.
    fn resample(
        &self,
        image: &Volume,
        mask: &Volume,
        req: &ResampleRequest,
    ) -> Result<(Volume, Volume), RadiomicsError>;
    /// Derived images for one image-type entry: (image-type name e.g. "wavelet-LLH", volume).
    fn derive(
        &self,
        spec: &ImageTypeSpec,
        image: &Volume,
        mask: &Volume,
    ) -> Result<Vec<(String, Volume)>, RadiomicsError>;
}

/// Original image only: resampling and derived image types are reported as not available.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFilters;

impl FilterProvider for NoFilters {
    fn resample(
        &self,
        _image: &Volume,
        _mask: &Volume,
        req: &ResampleRequest,
    ) -> Result<(Volume, Volume), RadiomicsError> {
        Err(RadiomicsError::NotAvailable(format!(
            "resampling to {:?} mm ({})",
            req.spacing,
            req.interpolator.name()
        )))
    }

    fn derive(
        &self,
        spec: &ImageTypeSpec,
        _image: &Volume,
        _mask: &Volume,
    ) -> Result<Vec<(String, Volume)>, RadiomicsError> {
        match spec {
            ImageTypeSpec::Original => Err(RadiomicsError::NotAvailable(
                "deriving the original image through a filter".into(),
            )),
            ImageTypeSpec::LoG { .. } => {
                Err(RadiomicsError::NotAvailable("the LoG image type".into()))
            }
            ImageTypeSpec::Wavelet(_) => Err(RadiomicsError::NotAvailable(
                "the Wavelet image type".into(),
            )),
        }
    }
}

/// Size and spacing of a grid, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GridInfo {
    /// Voxels (x, y, z).
    pub dims: [usize; 3],
    /// Spacing in mm (x, y, z).
    pub spacing: [f64; 3],
}

/// Provenance and ROI facts of one extraction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostics {
    /// `glioedge <version>`.
    pub software: String,
    /// The PyRadiomics version whose behaviour is reproduced.
    pub pyradiomics_parity: &'static str,
    /// SHA-256 of the effective parameters ([`Params::hash`]).
    pub settings_hash: String,
    /// SHA-256 of the image file, filled in by callers that read files.
    pub image_sha256: Option<String>,
    /// SHA-256 of the mask file, filled in by callers that read files.
    pub mask_sha256: Option<String>,
    /// ROI label.
    pub label: i64,
    /// The input grid.
    pub image_grid: GridInfo,
    /// The grid after resampling (and cropping), if resampled.
    pub resampled_grid: Option<GridInfo>,
    /// ROI voxels (after re-segmentation, if any).
    pub roi_voxels: usize,
    /// ROI bounding box on the (resampled) grid.
    pub bounding_box: RoiBox,
    /// Image types computed, in order.
    pub image_types: Vec<String>,
}

/// One feature value or the reason it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureResult {
    /// Full PyRadiomics key, e.g. `original_glcm_Contrast`.
    pub key: String,
    /// Image type, e.g. `original`, `wavelet-LLH`.
    pub image_type: String,
    /// The feature.
    pub feature: FeatureId,
    /// The value, or why the ROI does not allow it.
    pub value: Result<f64, String>,
}

/// The result of [`extract`].
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    /// Provenance and ROI facts.
    pub diagnostics: Diagnostics,
    /// Every enabled feature, in PyRadiomics order.
    pub results: Vec<FeatureResult>,
}

impl Extraction {
    /// Computed values (key → value), in PyRadiomics order.
    pub fn features(&self) -> Vec<(String, f64)> {
        self.results
            .iter()
            .filter_map(|r| r.value.as_ref().ok().map(|v| (r.key.clone(), *v)))
            .collect()
    }

    /// Features without a value (key → reason).
    pub fn errors(&self) -> Vec<(String, String)> {
        self.results
            .iter()
            .filter_map(|r| r.value.as_ref().err().map(|e| (r.key.clone(), e.clone())))
            .collect()
    }
}

fn spacing_of(v: &Volume) -> [f64; 3] {
    v.zooms()
}

fn same_grid(a: &Grid, b: &Grid) -> Result<(), RadiomicsError> {
    if a.dims != b.dims {
        return Err(RadiomicsError::GeometryMismatch(format!(
            "image is {:?} voxels, mask is {:?}",
            a.dims, b.dims
        )));
    }
    let d = a.affine.max_abs_diff(&b.affine);
    if d > 1e-3 {
        return Err(RadiomicsError::GeometryMismatch(format!(
            "voxel-to-world transforms differ by up to {d:.3e} mm"
        )));
    }
    Ok(())
}

/// SimpleITK `Normalize` (mean 0, sample standard deviation 1 over the whole image), optional
/// outlier clipping, then scaling.
fn normalise(values: &mut [f64], s: &Settings) -> Result<(), RadiomicsError> {
    let n = values.len() as f64;
    let mean = firstorder::pairwise_sum(values) / n;
    let ss: f64 = firstorder::pairwise_sum(
        &values
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .collect::<Vec<_>>(),
    );
    let sd = (ss / (n - 1.0)).sqrt();
    if !(sd > 0.0 && sd.is_finite()) {
        return Err(RadiomicsError::Setting {
            key: "normalize".into(),
            problem: "the image is constant; it cannot be normalised".into(),
        });
    }
    for v in values.iter_mut() {
        let mut z = (*v - mean) / sd;
        if let Some(o) = s.remove_outliers {
            z = z.clamp(-o, o);
        }
        *v = z * s.normalize_scale;
    }
    Ok(())
}

/// Crops both volumes to `bb` grown by `pad` voxels (clipped to the image), moving the origin.
fn crop_volume(v: &Volume, lo: [usize; 3], size: [usize; 3]) -> Volume {
    let dims = v.dims();
    let mut data = Vec::with_capacity(size[0] * size[1] * size[2]);
    for z in 0..size[2] {
        for y in 0..size[1] {
            let start = ((lo[2] + z) * dims[1] + lo[1] + y) * dims[0] + lo[0];
            data.extend_from_slice(&v.data()[start..start + size[0]]);
        }
    }
    let origin = v.affine().apply([lo[0] as f64, lo[1] as f64, lo[2] as f64]);
    let grid = Grid {
        dims: size,
        affine: Affine::from_parts(v.affine().linear(), origin),
    };
    // Sizes agree by construction.
    Volume::new(grid, data).unwrap_or_else(|_| Volume::filled(grid, 0.0))
}

fn padded_box(bb: RoiBox, pad: usize, dims: [usize; 3]) -> ([usize; 3], [usize; 3]) {
    let mut lo = [0; 3];
    let mut size = [0; 3];
    for a in 0..3 {
        lo[a] = bb.lo[a].saturating_sub(pad);
        let hi = (bb.lo[a] + bb.size[a] + pad).min(dims[a]);
        size[a] = hi - lo[a];
    }
    (lo, size)
}

/// Extracts every enabled feature of `params` from `image` inside the ROI `mask == label`.
pub fn extract(
    image: &Volume,
    mask: &Volume,
    params: &Params,
    filters: &dyn FilterProvider,
) -> Result<Extraction, RadiomicsError> {
    let s = &params.settings;
    same_grid(image.grid(), mask.grid())?;
    let image_grid = GridInfo {
        dims: image.dims(),
        spacing: spacing_of(image),
    };
    // Label present at all? (PyRadiomics getMask, before anything else.)
    // (A scan that stops at the first ROI voxel; the membership volume itself is only built
    // when the original grid is the working grid.)
    let label = s.label as f64;
    if !mask.data().iter().any(|&v| f64::from(v) == label) {
        let present = roi::present_labels(mask);
        return Err(if present.is_empty() {
            RadiomicsError::EmptyMask
        } else {
            RadiomicsError::LabelMissing {
                label: s.label,
                present,
            }
        });
    }
    // 1. Normalisation (whole image, float64).
    let mut work_image: Cow<'_, Volume> = Cow::Borrowed(image);
    let mut values: Option<Vec<f64>> = None;
    if s.normalize {
        let mut v: Vec<f64> = image.data().iter().map(|&x| f64::from(x)).collect();
        normalise(&mut v, s)?;
        work_image = Cow::Owned(
            Volume::new(*image.grid(), v.iter().map(|&x| x as f32).collect()).map_err(|e| {
                RadiomicsError::Filter {
                    what: "normalisation".into(),
                    message: e.to_string(),
                }
            })?,
        );
        values = Some(v);
    }
    // 2. Resampling or pre-cropping.
    let mut work_mask: Cow<'_, Volume> = Cow::Borrowed(mask);
    let mut resampled_grid = None;
    if let Some(sp) = s.resampled_pixel_spacing {
        let req = ResampleRequest {
            spacing: sp,
            interpolator: s.interpolator,
            label: s.label,
            pad_distance: s.pad_distance,
            pre_crop: true,
        };
        let t = std::time::Instant::now();
        let (img, msk) = filters.resample(&work_image, mask, &req)?;
        tracing::debug!(
            "radiomics: resampled in {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        same_grid(img.grid(), msk.grid())?;
        resampled_grid = Some(GridInfo {
            dims: img.dims(),
            spacing: spacing_of(&img),
        });
        values = None;
        work_image = Cow::Owned(img);
        work_mask = Cow::Owned(msk);
    } else if s.pre_crop {
        let bb = roi::check_mask(&roi::label_mask(mask, s.label), mask.dims(), mask, s)?;
        let (lo, size) = padded_box(bb, s.pad_distance, mask.dims());
        work_image = Cow::Owned(crop_volume(&work_image, lo, size));
        work_mask = Cow::Owned(crop_volume(mask, lo, size));
        if let Some(v) = values.take() {
            let dims = image.dims();
            let mut out = Vec::with_capacity(size[0] * size[1] * size[2]);
            for z in 0..size[2] {
                for y in 0..size[1] {
                    let start = ((lo[2] + z) * dims[1] + lo[1] + y) * dims[0] + lo[0];
                    out.extend_from_slice(&v[start..start + size[0]]);
                }
            }
            values = Some(out);
        }
    }
    let dims = work_image.dims();
    let spacing = spacing_of(&work_image);
    let pixels = match &values {
        Some(v) => Pixels::F64(v),
        None => Pixels::F32(work_image.data()),
    };
    // 3. Mask checks on the working grid.
    let inside = roi::label_mask(&work_mask, s.label);
    let bb = roi::check_mask(&inside, dims, &work_mask, s)?;
    // 4. Re-segmentation (textures and first order only; shape keeps the mask as it is).
    let (tex_inside, tex_bb) = match &s.resegment_range {
        Some(r) => {
            let lo = r[0];
            let hi = r.get(1).copied().unwrap_or(f64::INFINITY);
            let re: Vec<bool> = inside
                .iter()
                .enumerate()
                .map(|(i, &m)| m && pixels.get(i) >= lo && pixels.get(i) <= hi)
                .collect();
            if !re.iter().any(|&b| b) {
                return Err(RadiomicsError::ResegmentedEmpty(r.clone()));
            }
            let bb = roi::check_mask(&re, dims, &work_mask, s)?;
            (Some(re), bb)
        }
        None => (None, bb),
    };
    let tex_mask = tex_inside.as_deref().unwrap_or(&inside);
    let roi_voxels = tex_mask.iter().filter(|&&b| b).count();
    let classes: Vec<(FeatureClass, Vec<FeatureId>)> = params
        .feature_classes
        .iter()
        .filter(|(c, _)| *c != FeatureClass::Shape)
        .map(|(c, e)| (*c, selected(*c, e)))
        .collect();
    // 5. Shape (on the original mask), and every image type — derived images computed as they
    // are needed — with its families, all in parallel; results are gathered in PyRadiomics'
    // order (shape, then image types in parameter-file order).
    let shape_task = || -> Vec<FeatureResult> {
        let Some(en) = params.enabled(FeatureClass::Shape) else {
            return Vec::new();
        };
        let t = std::time::Instant::now();
        let c = Cropped::new(pixels, &inside, dims, spacing, bb);
        let which: Vec<_> = selected(FeatureClass::Shape, en)
            .into_iter()
            .filter_map(|f| match f {
                FeatureId::Shape(x) => Some(x),
                _ => None,
            })
            .collect();
        let out = shape::compute(&c, &which)
            .into_iter()
            .map(|(f, v)| {
                let id = FeatureId::Shape(f);
                FeatureResult {
                    key: id.key("original"),
                    image_type: "original".into(),
                    feature: id,
                    value: v,
                }
            })
            .collect();
        tracing::debug!(
            "radiomics: shape in {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        out
    };
    type PerImage = (String, Vec<FeatureResult>);
    let features_of = |name: &str, data: Pixels<'_>| -> Vec<FeatureResult> {
        let t = std::time::Instant::now();
        let c = Cropped::new(data, tex_mask, dims, spacing, tex_bb);
        let out = image_features(name, &c, &classes, s);
        tracing::debug!(
            "radiomics: {name} features in {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        out
    };
    let image_task = |spec: &ImageTypeSpec| -> Result<Vec<PerImage>, RadiomicsError> {
        if let ImageTypeSpec::Original = spec {
            return Ok(vec![("original".into(), features_of("original", pixels))]);
        }
        let t = std::time::Instant::now();
        let derived = filters.derive(spec, &work_image, &work_mask)?;
        tracing::debug!(
            "radiomics: {} derived image(s) in {:.1} ms",
            derived.len(),
            t.elapsed().as_secs_f64() * 1e3
        );
        for (name, vol) in &derived {
            if vol.dims() != dims {
                return Err(RadiomicsError::Filter {
                    what: format!("image type {name}"),
                    message: format!(
                        "derived image is {:?} voxels, expected {:?}",
                        vol.dims(),
                        dims
                    ),
                });
            }
        }
        // Costliest first (texture matrices grow with the number of grey levels, i.e. with
        // the intensity range; wavelet-LLL, last in PyRadiomics' order, is usually the widest),
        // so that it does not run alone at the end; results are put back in order.
        let mut order: Vec<(usize, f32)> = derived
            .iter()
            .enumerate()
            .map(|(i, (_, vol))| {
                let (lo, hi) = vol
                    .data()
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                (i, hi - lo)
            })
            .collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut done: Vec<(usize, PerImage)> = order
            .par_iter()
            .map(|&(i, _)| {
                let (name, vol) = &derived[i];
                (
                    i,
                    (name.clone(), features_of(name, Pixels::F32(vol.data()))),
                )
            })
            .collect();
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, r)| r).collect())
    };
    let (shape_results, per_spec) = rayon::join(shape_task, || {
        params
            .image_types
            .par_iter()
            .map(image_task)
            .collect::<Vec<_>>()
    });
    let mut results = shape_results;
    let mut names = Vec::new();
    for per_image in per_spec {
        for (name, r) in per_image? {
            names.push(name);
            results.extend(r);
        }
    }
    Ok(Extraction {
        diagnostics: Diagnostics {
            software: format!("glioedge {}", env!("CARGO_PKG_VERSION")),
            pyradiomics_parity: "3.1.0",
            settings_hash: params.hash(),
            image_sha256: None,
            mask_sha256: None,
            label: s.label,
            image_grid,
            resampled_grid,
            roi_voxels,
            bounding_box: tex_bb,
            image_types: names,
        },
        results,
    })
}

fn selected(class: FeatureClass, en: &Enabled) -> Vec<FeatureId> {
    match en {
        Enabled::All => class.features(),
        Enabled::Only(list) => {
            // PyRadiomics enables (and outputs) listed features in parameter-file order.
            let mut out: Vec<FeatureId> = Vec::new();
            for f in list {
                if !out.contains(f) {
                    out.push(*f);
                }
            }
            out
        }
    }
}

fn image_features(
    name: &str,
    c: &Cropped,
    classes: &[(FeatureClass, Vec<FeatureId>)],
    s: &Settings,
) -> Vec<FeatureResult> {
    // The discretised box, its levels and its padded grid are built once and shared by the
    // families.
    // GLDM and NGTDM visit the same neighbourhoods: one pass serves both.
    let wants_neighbourhood = classes
        .iter()
        .any(|(c, _)| matches!(c, FeatureClass::Gldm | FeatureClass::Ngtdm));
    let disc = roi::discretise(c, s).map(|d| {
        let lv = Levels::of(&d);
        let grid = Padded::new(&d, &lv, &c.mask, c.dims, Padded::margin(&s.distances));
        let nb = wants_neighbourhood.then(|| {
            let angles = matrices::angles(c.dims, &s.distances, true);
            matrices::neighbourhood(&grid, &lv, &angles, s.gldm_a as i64)
        });
        (d, lv, grid, nb)
    });
    let per_class: Vec<Vec<(FeatureId, Result<f64, String>)>> = classes
        .par_iter()
        .map(|(class, which)| match &disc {
            Err(e) => which.iter().map(|&f| (f, Err(e.clone()))).collect(),
            Ok((d, lv, grid, nb)) => {
                let shared = Shared {
                    disc: d,
                    levels: lv,
                    grid,
                    neighbourhood: nb.as_ref(),
                };
                class_features(*class, which, c, &shared, s)
            }
        })
        .collect();
    per_class
        .into_iter()
        .flatten()
        .map(|(f, v)| FeatureResult {
            key: f.key(name),
            image_type: name.to_string(),
            feature: f,
            value: v.and_then(|x| {
                if x.is_finite() {
                    Ok(x)
                } else {
                    Err(format!("not a finite number ({x})"))
                }
            }),
        })
        .collect()
}

/// Largest number of present grey levels for which GLCM matrices are built (memory bound).
pub const MAX_GLCM_LEVELS: usize = 4096;

/// What the families of one image share: its discretisation, levels, padded grid and (when
/// GLDM or NGTDM is enabled) the neighbourhood counts.
struct Shared<'a> {
    disc: &'a roi::Discretised,
    levels: &'a Levels,
    grid: &'a Padded,
    neighbourhood: Option<&'a matrices::Neighbourhood>,
}

impl Shared<'_> {
    /// The shared neighbourhood counts, or computed here when none were shared.
    fn neighbourhood_or_compute(
        &self,
        c: &Cropped,
        s: &Settings,
    ) -> Cow<'_, matrices::Neighbourhood> {
        match self.neighbourhood {
            Some(nb) => Cow::Borrowed(nb),
            None => {
                let angles = matrices::angles(c.dims, &s.distances, true);
                Cow::Owned(matrices::neighbourhood(
                    self.grid,
                    self.levels,
                    &angles,
                    s.gldm_a as i64,
                ))
            }
        }
    }
}

fn class_features(
    class: FeatureClass,
    which: &[FeatureId],
    c: &Cropped,
    shared: &Shared<'_>,
    s: &Settings,
) -> Vec<(FeatureId, Result<f64, String>)> {
    let (d, lv, grid) = (shared.disc, shared.levels, shared.grid);
    let np = c.count as f64;
    macro_rules! pick {
        ($variant:ident) => {
            which
                .iter()
                .filter_map(|f| match f {
                    FeatureId::$variant(x) => Some(*x),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
    }
    match class {
        FeatureClass::Shape => Vec::new(),
        FeatureClass::FirstOrder => {
            let input = firstorder::FirstOrderInput {
                values: c.roi_values(),
                disc: d,
                voxel_volume: c.spacing.iter().product(),
                shift: s.voxel_array_shift,
            };
            firstorder::compute(&input, &pick!(FirstOrder))
                .into_iter()
                .map(|(f, v)| (FeatureId::FirstOrder(f), v))
                .collect()
        }
        FeatureClass::Glcm => {
            let w = pick!(Glcm);
            if lv.len() > MAX_GLCM_LEVELS {
                let msg = format!(
                    "{} grey levels in the ROI; GLCM is limited to {MAX_GLCM_LEVELS} (use a larger binWidth or binCount)",
                    lv.len()
                );
                return w
                    .into_iter()
                    .map(|f| (FeatureId::Glcm(f), Err(msg.clone())))
                    .collect();
            }
            let angles = matrices::angles(c.dims, &s.distances, false);
            let counts = matrices::glcm(grid, lv, &angles);
            let weighting = s.weighting_norm.map(|n| (n, angles.as_slice(), c.spacing));
            match glcm::prepare(counts, lv.len(), s.symmetrical_glcm, weighting) {
                None => w
                    .into_iter()
                    .map(|f| {
                        (
                            FeatureId::Glcm(f),
                            Err("no pair of neighbouring ROI voxels".to_string()),
                        )
                    })
                    .collect(),
                Some(mats) => glcm::compute(&mats, &lv.values, f64::from(d.ng), &w)
                    .into_iter()
                    .map(|(f, v)| (FeatureId::Glcm(f), v))
                    .collect(),
            }
        }
        FeatureClass::Glrlm => {
            let angles = matrices::angles(c.dims, &[1], false);
            let (mut runs, nr) = matrices::glrlm(grid, lv, &angles);
            if let Some(norm) = s.weighting_norm {
                let mut sum = vec![0.0; runs.first().map_or(0, |r| r.len())];
                for (m, a) in runs.iter().zip(&angles) {
                    let wgt = glcm::angle_weight(norm, a, c.spacing);
                    for (t, v) in sum.iter_mut().zip(m) {
                        *t += v * wgt;
                    }
                }
                runs = vec![sum];
            }
            glrlm::compute(&runs, nr, &lv.values, np, &pick!(Glrlm))
                .into_iter()
                .map(|(f, v)| (FeatureId::Glrlm(f), v))
                .collect()
        }
        FeatureClass::Glszm => {
            let angles = matrices::angles(c.dims, &[1], true);
            let zones = matrices::glszm(grid, lv, &angles);
            glszm::compute(&zones, &lv.values, np, &pick!(Glszm))
                .into_iter()
                .map(|(f, v)| (FeatureId::Glszm(f), v))
                .collect()
        }
        FeatureClass::Gldm => {
            let nb = shared.neighbourhood_or_compute(c, s);
            gldm::compute(&nb.dep, nb.cols, &lv.values, &pick!(Gldm))
                .into_iter()
                .map(|(f, v)| (FeatureId::Gldm(f), v))
                .collect()
        }
        FeatureClass::Ngtdm => {
            let nb = shared.neighbourhood_or_compute(c, s);
            ngtdm::compute(&nb.n, &nb.s, &lv.values, &pick!(Ngtdm))
                .into_iter()
                .map(|(f, v)| (FeatureId::Ngtdm(f), v))
                .collect()
        }
    }
}
