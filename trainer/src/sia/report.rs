//! SIA summaries: per estimator, correct vs incorrect traces (entropy before the first step and
//! after the last, drop per step, violations, monotone share), accuracy by number of violations,
//! Fano's bound with estimator (b); mean h curves on a normalised step axis; report and plots.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use entrl_rewards::sia::{Curve, fano_bound};
use serde::{Deserialize, Serialize};

use super::Trace;

/// Points of the normalised step axis (0%, 10%, …, 100% of a chain).
const AXIS: usize = 11;

/// One class of traces under one estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    /// Traces.
    pub traces: usize,
    /// Mean steps.
    pub steps: f64,
    /// Mean h before the first step.
    pub h_first: f64,
    /// Mean h after the last step.
    pub h_final: f64,
    /// Mean of (h_0 − h_K)/K over traces with at least one step.
    pub drop_per_step: f64,
    /// Mean monotonicity violations.
    pub violations: f64,
    /// Share of traces without violations.
    pub monotone: f64,
    /// Mean curve on the normalised axis over traces with at least one step (NaN without any).
    pub curve: Vec<f64>,
}

/// One estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimatorSummary {
    /// `gold_teacher_forced` or `sampled_answers`.
    pub estimator: String,
    /// Correct traces.
    pub correct: Option<ClassSummary>,
    /// Incorrect traces.
    pub incorrect: Option<ClassSummary>,
    /// Accuracy of traces with 0, 1, 2, 3+ violations: (traces, accuracy).
    pub accuracy_by_violations: BTreeMap<String, (usize, f64)>,
    /// Mean Fano lower bound on the error from the final h (estimator (b) only).
    pub fano_bound: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiaReport {
    /// The model.
    pub model: String,
    /// Traces and their accuracy.
    pub traces: usize,
    /// Share correct.
    pub accuracy: f64,
    /// Per estimator.
    pub estimators: Vec<EstimatorSummary>,
    /// Every trace.
    pub per_trace: Vec<Trace>,
    /// Bootstrap intervals over chains and paired class differences (`sia::intervals`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<crate::eval::bootstrap::Intervals>,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

fn class(curves: &[&Curve], tol: f64) -> Option<ClassSummary> {
    if curves.is_empty() {
        return None;
    }
    let with_steps: Vec<&&Curve> = curves.iter().filter(|c| c.h.len() > 1).collect();
    // The mean curve over traces with at least one step (a stepless trace has no shape).
    let resampled: Vec<Vec<f64>> = with_steps.iter().map(|c| c.resampled(AXIS)).collect();
    Some(ClassSummary {
        traces: curves.len(),
        steps: mean(curves.iter().map(|c| c.h.len() as f64 - 1.0)),
        h_first: mean(curves.iter().map(|c| c.h[0])),
        h_final: mean(curves.iter().map(|c| c.h[c.h.len() - 1])),
        drop_per_step: mean(with_steps.iter().map(|c| c.mean_drop())),
        violations: mean(curves.iter().map(|c| c.violations(tol) as f64)),
        monotone: mean(curves.iter().map(|c| (c.violations(tol) == 0) as u8 as f64)),
        curve: (0..AXIS).map(|i| mean(resampled.iter().map(|r| r[i]))).collect(),
    })
}

fn summarise(name: &str, traces: &[(&Curve, bool)], tol: f64, alphabet: Option<usize>) -> EstimatorSummary {
    let pick = |want: bool| traces.iter().filter(|t| t.1 == want).map(|t| t.0).collect::<Vec<_>>();
    let mut by_v: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (c, ok) in traces {
        let v = c.violations(tol);
        let e = by_v
            .entry(if v >= 3 { "3+".into() } else { v.to_string() })
            .or_default();
        e.0 += 1;
        e.1 += *ok as usize;
    }
    EstimatorSummary {
        estimator: name.into(),
        correct: class(&pick(true), tol),
        incorrect: class(&pick(false), tol),
        accuracy_by_violations: by_v
            .into_iter()
            .map(|(k, (n, c))| (k, (n, c as f64 / n as f64)))
            .collect(),
        fano_bound: alphabet.map(|a| mean(traces.iter().filter_map(|(c, _)| fano_bound(c.h[c.h.len() - 1], a)))),
    }
}

/// Summarises the traces.
pub fn build(traces: Vec<Trace>, model: &str, tol: f64, alphabet: usize) -> SiaReport {
    let gold: Vec<(&Curve, bool)> = traces.iter().map(|t| (&t.gold, t.correct)).collect();
    let mut estimators = vec![summarise("gold_teacher_forced", &gold, tol, None)];
    let sampled: Vec<(&Curve, bool)> = traces
        .iter()
        .filter_map(|t| t.sampled.as_ref().map(|c| (c, t.correct)))
        .collect();
    if !sampled.is_empty() {
        estimators.push(summarise("sampled_answers", &sampled, tol, Some(alphabet)));
    }
    SiaReport {
        model: model.into(),
        traces: traces.len(),
        accuracy: mean(traces.iter().map(|t| t.correct as u8 as f64)),
        estimators,
        per_trace: traces,
        intervals: None,
    }
}

/// The report as markdown.
pub fn markdown(r: &SiaReport) -> String {
    let mut s = format!(
        "# Stepwise Informativeness\n\n`{}`: {} chains, accuracy {:.3}.\n\n",
        r.model, r.traces, r.accuracy
    );
    s.push_str("| estimator | traces | n | steps | h before | h final | drop/step | violations | monotone |\n|---|---|---|---|---|---|---|---|---|\n");
    for e in &r.estimators {
        for (label, c) in [("correct", &e.correct), ("incorrect", &e.incorrect)] {
            if let Some(c) = c {
                let _ = writeln!(
                    s,
                    "| {} | {label} | {} | {:.2} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} |",
                    e.estimator, c.traces, c.steps, c.h_first, c.h_final, c.drop_per_step, c.violations, c.monotone
                );
            }
        }
    }
    s.push_str(
        "\nAccuracy by monotonicity violations:\n\n| estimator | violations | traces | accuracy |\n|---|---|---|---|\n",
    );
    for e in &r.estimators {
        for (v, (n, acc)) in &e.accuracy_by_violations {
            let _ = writeln!(s, "| {} | {v} | {n} | {acc:.3} |", e.estimator);
        }
        if let Some(f) = e.fano_bound {
            let _ = writeln!(
                s,
                "\n{}: mean Fano bound on the error from the final h: {f:.3} (observed error {:.3}).\n",
                e.estimator,
                1.0 - r.accuracy
            );
        }
    }
    if let Some(iv) = &r.intervals {
        let _ = writeln!(
            s,
            "\nPaired differences, 95% intervals from {} bootstrap resamples of the chains:\n\n| difference | value | 95% |\n|---|---:|---|",
            iv.resamples
        );
        for (k, [d, lo, hi]) in &iv.differences {
            let _ = writeln!(s, "| {k} | {d:+.3} | [{lo:+.3}, {hi:+.3}] |");
        }
    }
    s
}

/// Writes `report.{md,json}` and `plots/sia_curves.{svg,png}`, `plots/sia_accuracy_by_violations.{svg,png}`.
pub fn write(r: &SiaReport, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.md"), markdown(r))?;
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(r)?)?;
    let axis = |c: &ClassSummary| {
        c.curve
            .iter()
            .enumerate()
            .map(|(i, &h)| (i as f64 * 100.0 / (AXIS - 1) as f64, h))
            .collect::<Vec<_>>()
    };
    let panels: Vec<(String, Vec<crate::plots::Series>)> = r
        .estimators
        .iter()
        .map(|e| {
            let mut series = Vec::new();
            for (label, c) in [("correct traces", &e.correct), ("incorrect traces", &e.incorrect)] {
                if let Some(c) = c {
                    series.push((label.to_string(), axis(c)));
                }
            }
            (format!("h_k, {} (nats)", e.estimator), series)
        })
        .collect();
    crate::plots::curves(
        &dir.join("plots/sia_curves"),
        &panels,
        "Answer entropy after each share of the chain (x: % of steps)",
    )?;
    let bars: Vec<crate::plots::Bar> = r
        .estimators
        .iter()
        .flat_map(|e| {
            e.accuracy_by_violations
                .iter()
                .map(move |(v, (n, acc))| (format!("{} v={v} (n={n})", &e.estimator[..4]), *acc, 0.0))
        })
        .collect();
    crate::plots::bars(
        &dir.join("plots/sia_accuracy_by_violations"),
        &bars,
        [
            "estimator (gold / samp), monotonicity violations v, chains n",
            "accuracy",
        ],
        "Accuracy by monotonicity violations",
    )?;
    Ok(())
}
