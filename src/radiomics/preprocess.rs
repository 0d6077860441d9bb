//! PyRadiomics pre-processing: resampling to a new spacing, pre-cropping, casting.
