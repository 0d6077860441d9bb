//! Typed feature identifiers: one enum per family, names exactly as PyRadiomics prints them.
//!
//! PyRadiomics finds features by reflection (`get<Name>FeatureValue`) and orders them by that
//! method name; here every family lists its features once, in that same order, so output order
//! and names are fixed at compile time.

use serde::Serialize;

macro_rules! feature_family {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum $name { $($variant),* }

        impl $name {
            /// Every feature of the family, in PyRadiomics output order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The PyRadiomics feature name (`Elongation`, `10Percentile`…).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// Looks a feature up by its PyRadiomics name.
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

feature_family! {
    /// First-order statistics (18).
    FirstOrder {
        P10 => "10Percentile",
        P90 => "90Percentile",
        Energy => "Energy",
        Entropy => "Entropy",
        InterquartileRange => "InterquartileRange",
        Kurtosis => "Kurtosis",
        Maximum => "Maximum",
        MeanAbsoluteDeviation => "MeanAbsoluteDeviation",
        Mean => "Mean",
        Median => "Median",
        Minimum => "Minimum",
        Range => "Range",
        RobustMeanAbsoluteDeviation => "RobustMeanAbsoluteDeviation",
        RootMeanSquared => "RootMeanSquared",
        Skewness => "Skewness",
        TotalEnergy => "TotalEnergy",
        Uniformity => "Uniformity",
        Variance => "Variance",
    }
}

feature_family! {
    /// 3-D shape (14).
    Shape {
        Elongation => "Elongation",
        Flatness => "Flatness",
        LeastAxisLength => "LeastAxisLength",
        MajorAxisLength => "MajorAxisLength",
        Maximum2DDiameterColumn => "Maximum2DDiameterColumn",
        Maximum2DDiameterRow => "Maximum2DDiameterRow",
        Maximum2DDiameterSlice => "Maximum2DDiameterSlice",
        Maximum3DDiameter => "Maximum3DDiameter",
        MeshVolume => "MeshVolume",
        MinorAxisLength => "MinorAxisLength",
        Sphericity => "Sphericity",
        SurfaceArea => "SurfaceArea",
        SurfaceVolumeRatio => "SurfaceVolumeRatio",
        VoxelVolume => "VoxelVolume",
    }
}

feature_family! {
    /// Grey level co-occurrence matrix (24).
    Glcm {
        Autocorrelation => "Autocorrelation",
        ClusterProminence => "ClusterProminence",
        ClusterShade => "ClusterShade",
        ClusterTendency => "ClusterTendency",
        Contrast => "Contrast",
        Correlation => "Correlation",
        DifferenceAverage => "DifferenceAverage",
        DifferenceEntropy => "DifferenceEntropy",
        DifferenceVariance => "DifferenceVariance",
        Id => "Id",
        Idm => "Idm",
        Idmn => "Idmn",
        Idn => "Idn",
        Imc1 => "Imc1",
        Imc2 => "Imc2",
        InverseVariance => "InverseVariance",
        JointAverage => "JointAverage",
        JointEnergy => "JointEnergy",
        JointEntropy => "JointEntropy",
        Mcc => "MCC",
        MaximumProbability => "MaximumProbability",
        SumAverage => "SumAverage",
        SumEntropy => "SumEntropy",
        SumSquares => "SumSquares",
    }
}

feature_family! {
    /// Grey level run length matrix (16).
    Glrlm {
        GrayLevelNonUniformity => "GrayLevelNonUniformity",
        GrayLevelNonUniformityNormalized => "GrayLevelNonUniformityNormalized",
        GrayLevelVariance => "GrayLevelVariance",
        HighGrayLevelRunEmphasis => "HighGrayLevelRunEmphasis",
        LongRunEmphasis => "LongRunEmphasis",
        LongRunHighGrayLevelEmphasis => "LongRunHighGrayLevelEmphasis",
        LongRunLowGrayLevelEmphasis => "LongRunLowGrayLevelEmphasis",
        LowGrayLevelRunEmphasis => "LowGrayLevelRunEmphasis",
        RunEntropy => "RunEntropy",
        RunLengthNonUniformity => "RunLengthNonUniformity",
        RunLengthNonUniformityNormalized => "RunLengthNonUniformityNormalized",
        RunPercentage => "RunPercentage",
        RunVariance => "RunVariance",
        ShortRunEmphasis => "ShortRunEmphasis",
        ShortRunHighGrayLevelEmphasis => "ShortRunHighGrayLevelEmphasis",
        ShortRunLowGrayLevelEmphasis => "ShortRunLowGrayLevelEmphasis",
    }
}

feature_family! {
    /// Grey level size zone matrix (16).
    Glszm {
        GrayLevelNonUniformity => "GrayLevelNonUniformity",
        GrayLevelNonUniformityNormalized => "GrayLevelNonUniformityNormalized",
        GrayLevelVariance => "GrayLevelVariance",
        HighGrayLevelZoneEmphasis => "HighGrayLevelZoneEmphasis",
        LargeAreaEmphasis => "LargeAreaEmphasis",
        LargeAreaHighGrayLevelEmphasis => "LargeAreaHighGrayLevelEmphasis",
        LargeAreaLowGrayLevelEmphasis => "LargeAreaLowGrayLevelEmphasis",
        LowGrayLevelZoneEmphasis => "LowGrayLevelZoneEmphasis",
        SizeZoneNonUniformity => "SizeZoneNonUniformity",
        SizeZoneNonUniformityNormalized => "SizeZoneNonUniformityNormalized",
        SmallAreaEmphasis => "SmallAreaEmphasis",
        SmallAreaHighGrayLevelEmphasis => "SmallAreaHighGrayLevelEmphasis",
        SmallAreaLowGrayLevelEmphasis => "SmallAreaLowGrayLevelEmphasis",
        ZoneEntropy => "ZoneEntropy",
        ZonePercentage => "ZonePercentage",
        ZoneVariance => "ZoneVariance",
    }
}

feature_family! {
    /// Grey level dependence matrix (14).
    Gldm {
        DependenceEntropy => "DependenceEntropy",
        DependenceNonUniformity => "DependenceNonUniformity",
        DependenceNonUniformityNormalized => "DependenceNonUniformityNormalized",
        DependenceVariance => "DependenceVariance",
        GrayLevelNonUniformity => "GrayLevelNonUniformity",
        GrayLevelVariance => "GrayLevelVariance",
        HighGrayLevelEmphasis => "HighGrayLevelEmphasis",
        LargeDependenceEmphasis => "LargeDependenceEmphasis",
        LargeDependenceHighGrayLevelEmphasis => "LargeDependenceHighGrayLevelEmphasis",
        LargeDependenceLowGrayLevelEmphasis => "LargeDependenceLowGrayLevelEmphasis",
        LowGrayLevelEmphasis => "LowGrayLevelEmphasis",
        SmallDependenceEmphasis => "SmallDependenceEmphasis",
        SmallDependenceHighGrayLevelEmphasis => "SmallDependenceHighGrayLevelEmphasis",
        SmallDependenceLowGrayLevelEmphasis => "SmallDependenceLowGrayLevelEmphasis",
    }
}

feature_family! {
    /// Neighbouring grey tone difference matrix (5).
    Ngtdm {
        Busyness => "Busyness",
        Coarseness => "Coarseness",
        Complexity => "Complexity",
        Contrast => "Contrast",
        Strength => "Strength",
    }
}

/// A feature family (PyRadiomics "feature class").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureClass {
    /// `firstorder`
    FirstOrder,
    /// `shape` (3-D; only on the original image)
    Shape,
    /// `glcm`
    Glcm,
    /// `glrlm`
    Glrlm,
    /// `glszm`
    Glszm,
    /// `gldm`
    Gldm,
    /// `ngtdm`
    Ngtdm,
}

impl FeatureClass {
    /// All families, in PyRadiomics' customary order.
    pub const ALL: [FeatureClass; 7] = [
        FeatureClass::Shape,
        FeatureClass::FirstOrder,
        FeatureClass::Glcm,
        FeatureClass::Glrlm,
        FeatureClass::Glszm,
        FeatureClass::Gldm,
        FeatureClass::Ngtdm,
    ];

    /// The name used in parameter files and feature names (`firstorder`, `glcm`…).
    pub fn name(self) -> &'static str {
        match self {
            FeatureClass::FirstOrder => "firstorder",
            FeatureClass::Shape => "shape",
            FeatureClass::Glcm => "glcm",
            FeatureClass::Glrlm => "glrlm",
            FeatureClass::Glszm => "glszm",
            FeatureClass::Gldm => "gldm",
            FeatureClass::Ngtdm => "ngtdm",
        }
    }

    /// Parses a parameter-file class name.
    pub fn from_name(s: &str) -> Option<Self> {
        FeatureClass::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Every feature of the family, in output order.
    pub fn features(self) -> Vec<FeatureId> {
        match self {
            FeatureClass::FirstOrder => FirstOrder::ALL
                .iter()
                .map(|&f| FeatureId::FirstOrder(f))
                .collect(),
            FeatureClass::Shape => Shape::ALL.iter().map(|&f| FeatureId::Shape(f)).collect(),
            FeatureClass::Glcm => Glcm::ALL.iter().map(|&f| FeatureId::Glcm(f)).collect(),
            FeatureClass::Glrlm => Glrlm::ALL.iter().map(|&f| FeatureId::Glrlm(f)).collect(),
            FeatureClass::Glszm => Glszm::ALL.iter().map(|&f| FeatureId::Glszm(f)).collect(),
            FeatureClass::Gldm => Gldm::ALL.iter().map(|&f| FeatureId::Gldm(f)).collect(),
            FeatureClass::Ngtdm => Ngtdm::ALL.iter().map(|&f| FeatureId::Ngtdm(f)).collect(),
        }
    }

    /// Looks up one feature of this family by its PyRadiomics name.
    pub fn feature(self, name: &str) -> Option<FeatureId> {
        Some(match self {
            FeatureClass::FirstOrder => FeatureId::FirstOrder(FirstOrder::from_name(name)?),
            FeatureClass::Shape => FeatureId::Shape(Shape::from_name(name)?),
            FeatureClass::Glcm => FeatureId::Glcm(Glcm::from_name(name)?),
            FeatureClass::Glrlm => FeatureId::Glrlm(Glrlm::from_name(name)?),
            FeatureClass::Glszm => FeatureId::Glszm(Glszm::from_name(name)?),
            FeatureClass::Gldm => FeatureId::Gldm(Gldm::from_name(name)?),
            FeatureClass::Ngtdm => FeatureId::Ngtdm(Ngtdm::from_name(name)?),
        })
    }
}

/// One feature of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum FeatureId {
    FirstOrder(FirstOrder),
    Shape(Shape),
    Glcm(Glcm),
    Glrlm(Glrlm),
    Glszm(Glszm),
    Gldm(Gldm),
    Ngtdm(Ngtdm),
}

impl FeatureId {
    /// The family.
    pub fn class(self) -> FeatureClass {
        match self {
            FeatureId::FirstOrder(_) => FeatureClass::FirstOrder,
            FeatureId::Shape(_) => FeatureClass::Shape,
            FeatureId::Glcm(_) => FeatureClass::Glcm,
            FeatureId::Glrlm(_) => FeatureClass::Glrlm,
            FeatureId::Glszm(_) => FeatureClass::Glszm,
            FeatureId::Gldm(_) => FeatureClass::Gldm,
            FeatureId::Ngtdm(_) => FeatureClass::Ngtdm,
        }
    }

    /// The feature's own name (`Contrast`).
    pub fn name(self) -> &'static str {
        match self {
            FeatureId::FirstOrder(f) => f.name(),
            FeatureId::Shape(f) => f.name(),
            FeatureId::Glcm(f) => f.name(),
            FeatureId::Glrlm(f) => f.name(),
            FeatureId::Glszm(f) => f.name(),
            FeatureId::Gldm(f) => f.name(),
            FeatureId::Ngtdm(f) => f.name(),
        }
    }

    /// The full PyRadiomics key for an image type: `original_glcm_Contrast`.
    pub fn key(self, image_type: &str) -> String {
        format!("{image_type}_{}_{}", self.class().name(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_sizes_match_pyradiomics() {
        let n: Vec<usize> = FeatureClass::ALL
            .iter()
            .map(|c| c.features().len())
            .collect();
        assert_eq!(n, vec![14, 18, 24, 16, 16, 14, 5]);
        assert_eq!(
            FeatureId::Glcm(Glcm::Mcc).key("wavelet-LLH"),
            "wavelet-LLH_glcm_MCC"
        );
        assert_eq!(
            FeatureClass::FirstOrder.feature("10Percentile"),
            Some(FeatureId::FirstOrder(FirstOrder::P10))
        );
    }
}
