//! `report.html`: one self-contained page (inline CSS, SVG and PNG), printable on one or two A4
//! pages, rendered with minijinja from the same [`CaseResult`] that goes into `result.json`.
//!
//! The template only lays out; every number and every bar position is computed here, so the
//! template has no arithmetic to get wrong.

use base64::Engine;
use minijinja::{context, Environment};
use serde::Serialize;

use super::overlay::Overlay;
use super::result::{CaseResult, NomogramPoints, TaskResult, TaskStatus};

const TEMPLATE: &str = include_str!("templates/report.html.j2");

#[derive(Serialize)]
struct Bar {
    name: String,
    value: f64,
    x: f64,
    w: f64,
    y: f64,
    up: bool,
    label_x: f64,
}

#[derive(Serialize)]
struct TaskView {
    title: String,
    assessed: bool,
    call: String,
    probability: f64,
    pct: f64,
    thr_pct: f64,
    threshold: f64,
    positive_label: String,
    negative_label: String,
    reason: String,
    baseline: f64,
    logit: f64,
    bars: Vec<Bar>,
    svg_w: f64,
    svg_h: f64,
    axis_x: f64,
    nomogram: Option<NomogramPoints>,
    rad_score: Option<f64>,
    dl_score: Option<f64>,
}

#[derive(Serialize)]
struct OverlayView {
    caption: String,
    uri: String,
}

fn task_view(t: &TaskResult) -> TaskView {
    let assessed = t.status == TaskStatus::Assessed;
    let p = t.probability.unwrap_or(0.0);
    let (svg_w, name_w, plot_w) = (330.0, 120.0, 170.0);
    let mut bars = Vec::new();
    let (mut baseline, mut logit) = (0.0, 0.0);
    let mut axis_x = name_w;
    if let Some(shap) = &t.shap {
        baseline = shap.baseline_logit;
        logit = shap.logit;
        let shown: Vec<_> = shap.top.iter().take(8).collect();
        // Waterfall: cumulative logit from the baseline through each contribution.
        let mut cum = baseline;
        let mut stops = vec![cum];
        for c in &shown {
            cum += c.contribution;
            stops.push(cum);
        }
        let lo = stops.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = stops.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let sx = |v: f64| name_w + (v - lo) / span * plot_w;
        axis_x = sx(baseline);
        let mut cur = baseline;
        for (n, c) in shown.iter().enumerate() {
            let next = cur + c.contribution;
            let (a, b) = (sx(cur.min(next)), sx(cur.max(next)));
            let mut name = c.name.clone();
            if name.chars().count() > 22 {
                name = format!("{}…", name.chars().take(21).collect::<String>());
            }
            bars.push(Bar {
                name,
                value: c.contribution,
                x: a,
                w: (b - a).max(1.0),
                y: 4.0 + 14.0 * n as f64,
                up: c.contribution > 0.0,
                label_x: (b + 3.0).min(svg_w - 30.0),
            });
            cur = next;
        }
    }
    let svg_h = 8.0 + 14.0 * bars.len() as f64;
    TaskView {
        title: t.title.clone(),
        assessed,
        call: if t.positive == Some(true) {
            t.positive_label.clone()
        } else {
            t.negative_label.clone()
        },
        probability: p,
        pct: (p * 100.0).clamp(0.0, 100.0),
        thr_pct: (t.threshold * 100.0).clamp(0.0, 100.0),
        threshold: t.threshold,
        positive_label: t.positive_label.clone(),
        negative_label: t.negative_label.clone(),
        reason: t.reason.clone().unwrap_or_default(),
        baseline,
        logit,
        bars,
        svg_w,
        svg_h,
        axis_x,
        nomogram: t.nomogram.clone(),
        rad_score: t.rad_score,
        dl_score: t.dl_score,
    }
}

/// Renders the page.
pub fn render(result: &CaseResult, overlays: &[Overlay]) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    let tasks: Vec<TaskView> = result.tasks.iter().map(task_view).collect();
    let overlays: Vec<OverlayView> = overlays
        .iter()
        .map(|o| OverlayView {
            caption: o.caption.clone(),
            uri: format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&o.png)
            ),
        })
        .collect();
    env.get_template("report.html")?
        .render(context! { r => result, tasks => tasks, overlays => overlays })
}
