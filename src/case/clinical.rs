//! `clinical.toml`: the clinical variables the nomograms use.
//!
//! Every field is optional; a model that needs a missing one reports its task as "not
//! assessable" instead of inventing a value. Units are part of the field names where they
//! matter. Example:
//!
//! ```toml
//! age_years = 57            # age at imaging, years
//! sex = "F"                 # "F" or "M"
//! kps = 80                  # Karnofsky performance status, 0..100 in steps of 10
//! post_treatment = true     # imaging after chemoradiation
//! weeks_since_radiotherapy = 10.5   # time from end of radiotherapy to this scan
//! temozolomide = true       # concomitant/adjuvant temozolomide
//! mgmt_methylated = false   # MGMT promoter methylation, if known
//! ```
//!
//! These values never appear in logs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::CaseError;

/// Sex as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sex {
    /// Female.
    F,
    /// Male.
    M,
}

/// Clinical variables of one case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinical {
    /// Age at imaging, years (0–120).
    pub age_years: Option<f64>,
    /// Sex.
    pub sex: Option<Sex>,
    /// Karnofsky performance status (0–100).
    pub kps: Option<f64>,
    /// Whether the scan follows chemoradiation.
    pub post_treatment: Option<bool>,
    /// Weeks from the end of radiotherapy to this scan (≥ 0).
    pub weeks_since_radiotherapy: Option<f64>,
    /// Temozolomide given.
    pub temozolomide: Option<bool>,
    /// MGMT promoter methylated.
    pub mgmt_methylated: Option<bool>,
}

impl Clinical {
    /// Reads and validates a `clinical.toml`.
    pub fn load(path: &Path) -> Result<Clinical, CaseError> {
        let bad = |message: String| CaseError::BadToml {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let c: Clinical = toml::from_str(&text).map_err(|e| bad(e.message().to_string()))?;
        c.validate().map_err(bad)?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), String> {
        let check = |name: &str, v: Option<f64>, lo: f64, hi: f64| match v {
            Some(x) if !(x.is_finite() && (lo..=hi).contains(&x)) => {
                Err(format!("{name} = {x} is outside {lo}..{hi}"))
            }
            _ => Ok(()),
        };
        check("age_years", self.age_years, 0.0, 120.0)?;
        check("kps", self.kps, 0.0, 100.0)?;
        check(
            "weeks_since_radiotherapy",
            self.weeks_since_radiotherapy,
            0.0,
            5200.0,
        )?;
        if self.weeks_since_radiotherapy.is_some() && self.post_treatment == Some(false) {
            return Err("weeks_since_radiotherapy is given but post_treatment = false".into());
        }
        Ok(())
    }

    /// The value of a numeric variable by name, as the nomograms address them (`sex` is 1 for
    /// male, booleans are 0/1). `None` when unknown.
    pub fn numeric(&self, name: &str) -> Option<f64> {
        let b = |v: Option<bool>| v.map(|x| if x { 1.0 } else { 0.0 });
        match name {
            "age_years" => self.age_years,
            "sex_male" => self.sex.map(|s| if s == Sex::M { 1.0 } else { 0.0 }),
            "kps" => self.kps,
            "post_treatment" => b(self.post_treatment),
            "weeks_since_radiotherapy" => self.weeks_since_radiotherapy,
            "temozolomide" => b(self.temozolomide),
            "mgmt_methylated" => b(self.mgmt_methylated),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let c: Clinical = toml::from_str("age_years = 57\nsex = \"F\"\nkps = 80\n").expect("valid");
        assert!(c.validate().is_ok());
        assert_eq!(c.numeric("sex_male"), Some(0.0));
        let c: Clinical = toml::from_str("age_years = 250\n").expect("parses");
        assert!(c
            .validate()
            .expect_err("out of range")
            .contains("age_years"));
        assert!(toml::from_str::<Clinical>("name = \"Jane\"\n").is_err());
    }
}
