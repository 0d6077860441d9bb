//! The validation table of labelled scores (`glioedge validate`): per score AUC with DeLong CI,
//! the Youden operating point, calibration (Hosmer–Lemeshow, slope/intercept, Brier) and the
//! decision curve for scores that are probabilities; per later score, the paired DeLong test
//! and the NRI against the first score. Rendered as JSON, CSV, charts and a self-contained HTML
//! page.

use serde::Serialize;

use super::agreement::{nri, Nri};
use super::calibration::{
    brier, calibration_line, decision_curve, default_dca_thresholds, hosmer_lemeshow, DcaPoint,
    HosmerLemeshow,
};
use super::plots::{render, Band, Chart, Line, Rendered};
use super::roc::{
    bootstrap_ci, confusion_at, delong, delong_paired, roc_curve, sensitivity_band, youden,
    Confusion, DeLong, PairedDeLong,
};
use super::{bad, StatsError};

/// One named score column.
#[derive(Debug, Clone)]
pub struct ScoreInput {
    /// Column name.
    pub name: String,
    /// Values, one per case (same order as the labels).
    pub values: Vec<f64>,
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// Confidence level.
    pub level: f64,
    /// Stratified bootstrap resamples for the AUC CI and the ROC band (0: none).
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
    /// Risk cut-offs of the categorical NRI.
    pub nri_cutoffs: Vec<f64>,
    /// Decision-curve thresholds.
    pub dca_thresholds: Vec<f64>,
    /// Hosmer–Lemeshow groups.
    pub hl_groups: usize,
    /// Compare the last score (a nomogram) with each earlier one instead of each later score
    /// with the first.
    pub compare_last: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            level: 0.95,
            bootstrap: 1000,
            seed: 20261122,
            nri_cutoffs: vec![0.3, 0.7],
            dca_thresholds: default_dca_thresholds(),
            hl_groups: 10,
            compare_last: false,
        }
    }
}

/// Calibration of a probability score.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Hosmer–Lemeshow test (`None` with too few distinct predictions).
    pub hosmer_lemeshow: Option<HosmerLemeshow>,
    /// Slope of `glm(y ~ logit(p))`.
    pub calibration_slope: Option<f64>,
    /// Intercept of `glm(y ~ offset(logit(p)))`.
    pub calibration_intercept: Option<f64>,
    /// Brier score.
    pub brier: f64,
}

/// Metrics of one score.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreMetrics {
    /// Column name.
    pub name: String,
    /// All values within `[0, 1]`: calibration and decision curve apply.
    pub is_probability: bool,
    /// AUC, DeLong variance and CI.
    pub roc: DeLong,
    /// Stratified bootstrap percentile CI of the AUC.
    pub bootstrap_ci: Option<[f64; 2]>,
    /// Youden-optimal operating point with its confusion metrics.
    pub operating_point: Confusion,
    /// Calibration (probabilities only).
    pub calibration: Option<Calibration>,
    /// Decision curve (probabilities only).
    pub dca: Option<Vec<DcaPoint>>,
}

/// A later score against the first.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The later score.
    pub score: String,
    /// The first score.
    pub reference: String,
    /// Paired DeLong test (`score` − `reference`).
    pub delong: PairedDeLong,
    /// NRI of `score` over `reference` (both probabilities).
    pub nri: Option<Nri>,
}

/// A case left out, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    /// Case id (or row number).
    pub case: String,
    /// Why it was left out.
    pub reason: String,
}

/// The validation table.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationReport {
    /// Label column or task.
    pub label: String,
    /// Cases used.
    pub n: usize,
    /// Positive cases.
    pub n_positive: usize,
    /// Negative cases.
    pub n_negative: usize,
    /// Cases left out.
    pub excluded: Vec<Excluded>,
    /// Per score.
    pub scores: Vec<ScoreMetrics>,
    /// Later scores against the first.
    pub comparisons: Vec<Comparison>,
    /// Confidence level.
    pub level: f64,
    /// Bootstrap resamples and seed used.
    pub bootstrap: (usize, u64),
    /// Comparisons are of the last score against each earlier one.
    pub compare_last: bool,
}

/// Computes the table.
pub fn validate_scores(
    label: &str,
    y: &[f64],
    scores: &[ScoreInput],
    excluded: Vec<Excluded>,
    opts: &ValidateOptions,
) -> Result<ValidationReport, StatsError> {
    if scores.is_empty() {
        return Err(bad("validate", "no score given"));
    }
    let mut out = Vec::new();
    for s in scores {
        let roc = delong(y, &s.values, opts.level)?;
        let boot = if opts.bootstrap > 0 {
            Some(bootstrap_ci(
                y,
                &s.values,
                opts.bootstrap,
                opts.seed,
                opts.level,
            )?)
        } else {
            None
        };
        let op = youden(y, &s.values)?;
        let operating_point = confusion_at(y, &s.values, op.threshold)?;
        let is_probability = s.values.iter().all(|v| (0.0..=1.0).contains(v));
        let (calibration, dca) = if is_probability {
            let line = calibration_line(y, &s.values).ok();
            (
                Some(Calibration {
                    hosmer_lemeshow: hosmer_lemeshow(y, &s.values, opts.hl_groups).ok(),
                    calibration_slope: line.map(|l| l.slope),
                    calibration_intercept: line.map(|l| l.intercept),
                    brier: brier(y, &s.values)?,
                }),
                Some(decision_curve(y, &s.values, &opts.dca_thresholds)?),
            )
        } else {
            (None, None)
        };
        out.push(ScoreMetrics {
            name: s.name.clone(),
            is_probability,
            roc,
            bootstrap_ci: boot,
            operating_point,
            calibration,
            dca,
        });
    }
    let mut comparisons = Vec::new();
    let last = scores.len() - 1;
    let pairs: Vec<(usize, usize)> = if opts.compare_last {
        (0..last).map(|r| (last, r)).collect()
    } else {
        (1..scores.len()).map(|i| (i, 0)).collect()
    };
    for (i, r) in pairs {
        let (s, reference) = (&scores[i], &scores[r]);
        let nri_v = if out[r].is_probability && out[i].is_probability {
            Some(nri(y, &s.values, &reference.values, &opts.nri_cutoffs)?)
        } else {
            None
        };
        comparisons.push(Comparison {
            score: s.name.clone(),
            reference: reference.name.clone(),
            delong: delong_paired(y, &s.values, &reference.values)?,
            nri: nri_v,
        });
    }
    let n_positive = y.iter().filter(|&&v| v == 1.0).count();
    Ok(ValidationReport {
        label: label.to_string(),
        n: y.len(),
        n_positive,
        n_negative: y.len() - n_positive,
        excluded,
        scores: out,
        comparisons,
        level: opts.level,
        bootstrap: (opts.bootstrap, opts.seed),
        compare_last: opts.compare_last,
    })
}

fn f(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x}"))
}

impl ValidationReport {
    /// The comparison shown on a score's row: the score against the first score, or (with
    /// `compare_last`) the last score against this one.
    pub fn comparison_for(&self, name: &str) -> Option<&Comparison> {
        if self.compare_last {
            self.comparisons.iter().find(|c| c.reference == name)
        } else {
            self.comparisons.iter().find(|c| c.score == name)
        }
    }

    /// The seeds' table as CSV, one row per score.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "score,n,auc,auc_ci_low,auc_ci_high,threshold,sensitivity,specificity,accuracy,ppv,npv,compared,delong_p,hl_statistic,hl_p,calibration_slope,calibration_intercept,brier,nri_categorical,nri_continuous\n",
        );
        for m in &self.scores {
            let cmp = self.comparison_for(&m.name);
            let cal = m.calibration.as_ref();
            let hl = cal.and_then(|c| c.hosmer_lemeshow.as_ref());
            let op = &m.operating_point;
            let row = [
                csv_field(&m.name),
                self.n.to_string(),
                format!("{}", m.roc.auc),
                format!("{}", m.roc.ci[0]),
                format!("{}", m.roc.ci[1]),
                format!("{}", op.threshold),
                format!("{}", op.sensitivity),
                format!("{}", op.specificity),
                format!("{}", op.accuracy),
                f(op.ppv),
                f(op.npv),
                cmp.map_or(String::new(), |c| {
                    csv_field(&format!("{} vs {}", c.score, c.reference))
                }),
                f(cmp.map(|c| c.delong.p)),
                f(hl.map(|h| h.statistic)),
                f(hl.map(|h| h.p)),
                f(cal.and_then(|c| c.calibration_slope)),
                f(cal.and_then(|c| c.calibration_intercept)),
                f(cal.map(|c| c.brier)),
                f(cmp.and_then(|c| c.nri.as_ref().map(|n| n.categorical))),
                f(cmp.and_then(|c| c.nri.as_ref().map(|n| n.continuous))),
            ];
            s.push_str(&row.join(","));
            s.push('\n');
        }
        s
    }

    /// The charts: ROC (with bootstrap bands when resamples were asked for), and for
    /// probability scores calibration (deciles) and decision curve.
    pub fn charts(
        &self,
        y: &[f64],
        scores: &[ScoreInput],
    ) -> Result<Vec<(String, Rendered)>, String> {
        let mut charts = Vec::new();
        let mut roc = Chart {
            title: format!("ROC — {}", self.label),
            x_label: "1 − specificity".into(),
            y_label: "sensitivity".into(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            lines: vec![Line {
                name: String::new(),
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                colour: None,
                markers: false,
            }],
            bands: Vec::new(),
            legend_upper: false,
        };
        for (i, (s, m)) in scores.iter().zip(&self.scores).enumerate() {
            let curve = roc_curve(y, &s.values).map_err(|e| e.to_string())?;
            let mut pts: Vec<(f64, f64)> = curve
                .iter()
                .map(|p| (1.0 - p.specificity, p.sensitivity))
                .collect();
            pts.reverse();
            roc.lines.push(Line {
                name: format!("{} (AUC {:.3})", s.name, m.roc.auc),
                points: pts,
                colour: Some(i),
                markers: false,
            });
            if self.bootstrap.0 > 0 {
                let band = sensitivity_band(
                    y,
                    &s.values,
                    51,
                    self.bootstrap.0,
                    self.bootstrap.1,
                    self.level,
                )
                .map_err(|e| e.to_string())?;
                roc.bands.push(Band {
                    points: band
                        .iter()
                        .rev()
                        .map(|&(sp, lo, hi)| (1.0 - sp, lo, hi))
                        .collect(),
                    colour: i,
                });
            }
        }
        charts.push(("roc".to_string(), render(&roc)?));
        let probs: Vec<usize> = (0..scores.len())
            .filter(|&i| self.scores[i].is_probability)
            .collect();
        if !probs.is_empty() {
            let mut cal = Chart {
                title: format!("Calibration — {}", self.label),
                x_label: "predicted probability (decile means)".into(),
                y_label: "observed fraction".into(),
                x_range: (0.0, 1.0),
                y_range: (0.0, 1.0),
                lines: vec![Line {
                    name: "ideal".into(),
                    points: vec![(0.0, 0.0), (1.0, 1.0)],
                    colour: None,
                    markers: false,
                }],
                bands: Vec::new(),
                legend_upper: false,
            };
            let mut dca = Chart {
                title: format!("Decision curve — {}", self.label),
                x_label: "threshold probability".into(),
                y_label: "net benefit".into(),
                x_range: (0.0, 1.0),
                y_range: (-0.05, 0.0),
                lines: Vec::new(),
                bands: Vec::new(),
                legend_upper: true,
            };
            let prev = self.n_positive as f64 / self.n as f64;
            dca.y_range.1 = prev.max(0.05) * 1.1;
            let th: Vec<f64> = (1..100).map(|i| i as f64 / 100.0).collect();
            dca.lines.push(Line {
                name: "treat none".into(),
                points: vec![(0.0, 0.0), (1.0, 0.0)],
                colour: None,
                markers: false,
            });
            let all: Vec<(f64, f64)> = th
                .iter()
                .map(|&t| (t, prev - (1.0 - prev) * t / (1.0 - t)))
                .filter(|&(_, nb)| nb >= dca.y_range.0)
                .collect();
            dca.lines.push(Line {
                name: "treat all".into(),
                points: all,
                colour: Some(5),
                markers: false,
            });
            for &i in &probs {
                if let Some(h) = self.scores[i]
                    .calibration
                    .as_ref()
                    .and_then(|c| c.hosmer_lemeshow.as_ref())
                {
                    cal.lines.push(Line {
                        name: scores[i].name.clone(),
                        points: h
                            .groups
                            .iter()
                            .filter(|g| g.n > 0)
                            .map(|g| (g.expected / g.n as f64, g.observed / g.n as f64))
                            .collect(),
                        colour: Some(i),
                        markers: true,
                    });
                }
                let curve = decision_curve(y, &scores[i].values, &th).map_err(|e| e.to_string())?;
                dca.lines.push(Line {
                    name: scores[i].name.clone(),
                    points: curve
                        .iter()
                        .map(|p| (p.threshold, p.net_benefit_model.max(dca.y_range.0)))
                        .collect(),
                    colour: Some(i),
                    markers: false,
                });
            }
            charts.push(("calibration".to_string(), render(&cal)?));
            charts.push(("dca".to_string(), render(&dca)?));
        }
        Ok(charts)
    }

    /// A self-contained HTML page: the table, the comparisons and the charts (inline SVG).
    pub fn html(&self, charts: &[(String, Rendered)], source: &str) -> String {
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>glioedge validation</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}.charts svg{max-width:100%;height:auto}</style></head><body>\n");
        h.push_str(&format!(
            "<h1>Validation: {}</h1>\n<p>Source: {} — {} cases ({} positive, {} negative); {}% confidence intervals by DeLong; operating point by Youden's index; DeLong p and NRI compare {}.</p>\n",
            esc(&self.label),
            esc(source),
            self.n,
            self.n_positive,
            self.n_negative,
            self.level * 100.0,
            if self.compare_last { "the last score with each other score" } else { "each score with the first" }
        ));
        if !self.excluded.is_empty() {
            h.push_str(&format!(
                "<p><b>{} case(s) left out:</b></p><ul>\n",
                self.excluded.len()
            ));
            for e in &self.excluded {
                h.push_str(&format!("<li>{}: {}</li>\n", esc(&e.case), esc(&e.reason)));
            }
            h.push_str("</ul>\n");
        }
        h.push_str("<table><tr><th>score</th><th>AUC (95% CI)</th><th>sensitivity</th><th>specificity</th><th>accuracy</th><th>DeLong p</th><th>HL p</th><th>Brier</th><th>NRI (cat. / cont.)</th></tr>\n");
        let o = |v: Option<f64>, d: usize| v.map_or("—".to_string(), |x| format!("{x:.d$}"));
        for m in &self.scores {
            let cmp = self.comparison_for(&m.name);
            let cal = m.calibration.as_ref();
            let nri_s = cmp
                .and_then(|c| c.nri.as_ref())
                .map_or("—".to_string(), |n| {
                    format!("{:.3} / {:.3}", n.categorical, n.continuous)
                });
            h.push_str(&format!(
                "<tr><td>{}</td><td>{:.3} ({:.3}–{:.3})</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&m.name),
                m.roc.auc,
                m.roc.ci[0],
                m.roc.ci[1],
                m.operating_point.sensitivity,
                m.operating_point.specificity,
                m.operating_point.accuracy,
                cmp.map_or("—".to_string(), |c| format_p(c.delong.p)),
                cal.and_then(|c| c.hosmer_lemeshow.as_ref()).map_or("—".to_string(), |x| format_p(x.p)),
                o(cal.map(|c| c.brier), 3),
                nri_s
            ));
        }
        h.push_str("</table>\n<div class=\"charts\">\n");
        for (name, r) in charts {
            h.push_str(&format!(
                "<figure id=\"{}\">{}</figure>\n",
                esc(name),
                strip_xml_decl(&r.svg)
            ));
        }
        h.push_str(&format!(
            "</div>\n<p><small>glioedge {}; metrics.json holds every number.</small></p></body></html>\n",
            crate::VERSION
        ));
        h
    }
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn strip_xml_decl(s: &str) -> &str {
    match s.find("<svg") {
        Some(i) => &s[i..],
        None => s,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
