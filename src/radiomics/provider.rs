//! The real [`FilterProvider`]: PyRadiomics' resampling ([`super::preprocess`]) and derived image
//! types ([`super::filters`]) behind the extractor's interface.

use super::extractor::{FilterProvider, ResampleRequest};
use super::filters::{derived_images_typed, ImageTypeSpec};
use super::preprocess::{resample_image_and_mask_typed, ResampleSettings};
use super::settings::Interpolator as SitkInterpolator;
use super::RadiomicsError;
use crate::volume::resample::Interpolator;
use crate::volume::{StoredType, Volume};

/// Resampling and LoG/wavelet images as PyRadiomics (SimpleITK, PyWavelets) compute them.
///
/// `pixel` is the type the image file stores: SimpleITK keeps it through resampling (integer
/// images are cast back after interpolation) and PyWavelets computes in `float32` only for
/// `float32` data, so the same voxels give PyRadiomics' numbers only with the right type.
#[derive(Debug, Clone, Copy)]
pub struct PyRadiomicsFilters {
    /// The stored pixel type of the image file.
    pub pixel: StoredType,
}

impl Default for PyRadiomicsFilters {
    fn default() -> Self {
        PyRadiomicsFilters {
            pixel: StoredType::F32,
        }
    }
}

fn filter_err(what: &str, e: impl std::fmt::Display) -> RadiomicsError {
    RadiomicsError::Filter {
        what: what.into(),
        message: e.to_string(),
    }
}

impl FilterProvider for PyRadiomicsFilters {
    fn resample(
        &self,
        image: &Volume,
        mask: &Volume,
        req: &ResampleRequest,
    ) -> Result<(Volume, Volume), RadiomicsError> {
        let label = u32::try_from(req.label).map_err(|_| RadiomicsError::Setting {
            key: "label".into(),
            problem: format!("{} is not a valid mask label for resampling", req.label),
        })?;
        let settings = ResampleSettings {
            spacing: req.spacing,
            interpolator: match req.interpolator {
                SitkInterpolator::NearestNeighbor => Interpolator::Nearest,
                SitkInterpolator::Linear => Interpolator::Linear,
                SitkInterpolator::BSpline => Interpolator::BSpline,
            },
            label,
            pad_distance: req.pad_distance,
        };
        resample_image_and_mask_typed(image, self.pixel, mask, &settings)
            .map_err(|e| filter_err("resampling", e))
    }

    fn derive(
        &self,
        spec: &ImageTypeSpec,
        image: &Volume,
        mask: &Volume,
    ) -> Result<Vec<(String, Volume)>, RadiomicsError> {
        derived_images_typed(image, self.pixel, mask, spec)
            .map(|d| d.images)
            .map_err(|e| filter_err("derived image", e))
    }
}
