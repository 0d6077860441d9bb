//! Calibration and clinical usefulness of predicted probabilities: Hosmer–Lemeshow (groups by
//! quantiles of the prediction, as `ResourceSelection::hoslem.test`), calibration slope
//! (`glm(y ~ logit(p))`) and intercept (`glm(y ~ offset(logit(p)))`), Brier score, and the
//! decision curve (net benefit of the model, of treating all and of treating none).

use serde::Serialize;

use super::logistic::{fit_logistic, logit};
use super::{bad, check_binary, pchisq_upper, quantile_type7, StatsError};

/// One Hosmer–Lemeshow group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HlGroup {
    /// Lower break of the group.
    pub lower: f64,
    /// Upper break.
    pub upper: f64,
    /// Cases.
    pub n: usize,
    /// Observed events.
    pub observed: f64,
    /// Expected events (sum of the predictions).
    pub expected: f64,
}

/// Hosmer–Lemeshow test.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HosmerLemeshow {
    /// Chi-square statistic over events and non-events of every group.
    pub statistic: f64,
    /// Groups − 2.
    pub df: usize,
    /// Upper-tail chi-square p-value.
    pub p: f64,
    /// The groups.
    pub groups: Vec<HlGroup>,
}

fn check_probs(what: &'static str, y: &[f64], p: &[f64]) -> Result<(), StatsError> {
    check_binary(what, y, p.len())?;
    if let Some(v) = p.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(bad(what, format!("prediction {v} is not a probability")));
    }
    Ok(())
}

/// Hosmer–Lemeshow with `g` quantile groups (breaks = distinct type-7 quantiles at `i/g`,
/// intervals closed on the right, the first also on the left).
pub fn hosmer_lemeshow(y: &[f64], p: &[f64], g: usize) -> Result<HosmerLemeshow, StatsError> {
    check_probs("Hosmer-Lemeshow", y, p)?;
    let mut sorted = p.to_vec();
    sorted.sort_by(f64::total_cmp);
    let by = 1.0 / g as f64;
    let mut breaks: Vec<f64> = (0..=g)
        .map(|i| quantile_type7(&sorted, i as f64 * by))
        .collect();
    breaks.dedup();
    if breaks.len() < 4 {
        return Err(bad(
            "Hosmer-Lemeshow",
            "too few distinct predictions to form 3 or more groups",
        ));
    }
    let ng = breaks.len() - 1;
    let mut groups: Vec<HlGroup> = (0..ng)
        .map(|k| HlGroup {
            lower: breaks[k],
            upper: breaks[k + 1],
            n: 0,
            observed: 0.0,
            expected: 0.0,
        })
        .collect();
    let mut exp0 = vec![0.0; ng];
    for i in 0..y.len() {
        let k = breaks.partition_point(|&b| b < p[i]).clamp(1, ng) - 1;
        groups[k].n += 1;
        groups[k].observed += y[i];
        groups[k].expected += p[i];
        exp0[k] += 1.0 - p[i];
    }
    let mut chi = 0.0;
    for (k, gr) in groups.iter().enumerate() {
        let o0 = gr.n as f64 - gr.observed;
        chi += (o0 - exp0[k]).powi(2) / exp0[k];
        chi += (gr.observed - gr.expected).powi(2) / gr.expected;
    }
    let df = ng - 2;
    Ok(HosmerLemeshow {
        statistic: chi,
        df,
        p: pchisq_upper(chi, df as f64),
        groups,
    })
}

/// Calibration slope and intercept ("calibration-in-the-large" with the linear predictor as an
/// offset).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CalibrationLine {
    /// Slope of `glm(y ~ logit(p))`.
    pub slope: f64,
    /// Intercept of `glm(y ~ offset(logit(p)))`.
    pub intercept: f64,
}

/// Calibration slope and intercept of predicted probabilities.
pub fn calibration_line(y: &[f64], p: &[f64]) -> Result<CalibrationLine, StatsError> {
    check_probs("calibration", y, p)?;
    if p.iter().any(|&v| v <= 0.0 || v >= 1.0) {
        return Err(bad("calibration", "a prediction is exactly 0 or 1"));
    }
    let lp: Vec<f64> = p.iter().map(|&v| logit(v)).collect();
    let slope = fit_logistic(
        std::slice::from_ref(&lp),
        &["lp".to_string()],
        y,
        None,
        true,
    )?
    .coef[1];
    let intercept = fit_logistic(&[], &[], y, Some(&lp), true)?.coef[0];
    Ok(CalibrationLine { slope, intercept })
}

/// Mean squared difference between prediction and outcome.
pub fn brier(y: &[f64], p: &[f64]) -> Result<f64, StatsError> {
    check_probs("Brier score", y, p)?;
    let mut s = 0.0;
    for i in 0..y.len() {
        s += (p[i] - y[i]).powi(2);
    }
    Ok(s / y.len() as f64)
}

/// One decision-curve threshold.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct DcaPoint {
    /// Threshold probability `pt`.
    pub threshold: f64,
    /// `TP/n − FP/n · pt/(1 − pt)` with `p ≥ pt` treated.
    pub net_benefit_model: f64,
    /// Net benefit of treating everyone.
    pub net_benefit_treat_all: f64,
    /// Net benefit of treating no one (0).
    pub net_benefit_treat_none: f64,
}

/// Net benefit at each threshold.
pub fn decision_curve(
    y: &[f64],
    p: &[f64],
    thresholds: &[f64],
) -> Result<Vec<DcaPoint>, StatsError> {
    check_probs("decision curve", y, p)?;
    let n = y.len() as f64;
    let prev = super::mean(y);
    Ok(thresholds
        .iter()
        .map(|&pt| {
            let (mut tp, mut fp) = (0usize, 0usize);
            for i in 0..y.len() {
                if p[i] >= pt {
                    if y[i] == 1.0 {
                        tp += 1;
                    } else {
                        fp += 1;
                    }
                }
            }
            let odds = pt / (1.0 - pt);
            DcaPoint {
                threshold: pt,
                net_benefit_model: tp as f64 / n - fp as f64 / n * odds,
                net_benefit_treat_all: prev - (1.0 - prev) * odds,
                net_benefit_treat_none: 0.0,
            }
        })
        .collect())
}

/// The thresholds `0.05, 0.10, …, 0.95` computed as R's `seq(0.05, 0.95, by = 0.05)`.
pub fn default_dca_thresholds() -> Vec<f64> {
    (0..19).map(|i| 0.05 + i as f64 * 0.05).collect()
}
