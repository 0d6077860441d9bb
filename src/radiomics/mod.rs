//! Radiomics at PyRadiomics parity (IBSI): settings, image types, feature families.
//!
//! * [`filters`]: derived image types (LoG, wavelet) and the shared [`filters::ImageTypeSpec`].
//! * [`preprocess`]: PyRadiomics' resampling, pre-cropping and casting before extraction.
pub mod filters;
pub mod preprocess;
