//! Aggregation of a sweep: per arm and metric, mean ± 95% confidence interval over seeds, as
//! `sweep.csv` (one row per arm × metric) and `sweep.md` (arms × metrics), one bar chart per metric
//! and the training curves of every arm (mean over seeds).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::{Arm, ArmState, SweepFile, arm_state};
use crate::metrics_log::read_lines;
use crate::plots;

/// Metrics shown first in `sweep.md` and plotted, with their display names.
const SHOWN: [(&str, &str, f64); 6] = [
    ("accuracy_final", "held-out greedy accuracy after RL (%)", 100.0),
    ("accuracy_change", "accuracy change from RL (points)", 100.0),
    ("entropy_final", "greedy-completion token entropy after RL (nats)", 1.0),
    ("reward_mean_last10", "training reward, last 10 steps", 1.0),
    ("edis_mean_last10", "EDIS of training rollouts, last 10 steps", 1.0),
    ("auroc_edis_last10", "AUROC of EDIS for correctness, last 10 steps", 1.0),
];

/// Per-step metrics drawn as training curves.
const CURVE_KEYS: [&str; 4] = ["accuracy", "reward/mean", "entropy", "edis/mean"];

/// One run's training series: metric key → step → value.
type StepSeries = BTreeMap<String, BTreeMap<u64, f64>>;

/// Per-step series of one run's RL lines.
fn step_series(lines: &[serde_json::Value], keys: &[&str]) -> StepSeries {
    let mut out = StepSeries::new();
    for j in lines {
        if j.get("phase").and_then(|p| p.as_str()) != Some("rl") {
            continue;
        }
        let step = j["step"].as_u64().unwrap_or(0);
        for k in keys {
            if let Some(v) = j[*k].as_f64() {
                out.entry(k.to_string()).or_default().insert(step, v);
            }
        }
    }
    out
}

/// Writes `sweep.csv`, `sweep.md` and `plots/`; returns the markdown and the plot paths.
pub fn aggregate(sweep: &SweepFile, arms: &[Arm]) -> anyhow::Result<(String, Vec<PathBuf>)> {
    // arm label → metric → values over finished seeds (arms in sweep order)
    let mut order: Vec<String> = vec![];
    let mut table: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut seeds: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    // arm label → per finished seed, its training series (for the curves)
    let mut runs_of: BTreeMap<String, Vec<StepSeries>> = BTreeMap::new();
    // (arm label, seed) → figures, for the paired differences
    let mut per_seed: BTreeMap<(String, u64), BTreeMap<String, f64>> = BTreeMap::new();
    for a in arms {
        if !order.contains(&a.label) {
            order.push(a.label.clone());
        }
        if arm_state(&a.dir) != ArmState::Done {
            continue;
        }
        let lines = read_lines(&a.dir)?;
        let figs = arm_figures(&a.dir, &lines)?;
        runs_of
            .entry(a.label.clone())
            .or_default()
            .push(step_series(&lines, &CURVE_KEYS));
        seeds.entry(a.label.clone()).or_default().push(a.seed);
        per_seed.insert((a.label.clone(), a.seed), figs.clone());
        for (k, v) in figs {
            table.entry(a.label.clone()).or_default().entry(k).or_default().push(v);
        }
    }
    let mut csv = String::from("arm,metric,n,mean,ci95,min,max,values\n");
    for label in &order {
        for (k, v) in table.get(label).into_iter().flatten() {
            let (m, ci) = mean_ci(v);
            let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let vals: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            let _ = writeln!(csv, "{label},{k},{},{m},{ci},{lo},{hi},{}", v.len(), vals.join(";"));
        }
    }
    std::fs::write(sweep.output_dir.join("sweep.csv"), &csv)?;

    let mut md = format!(
        "# Sweep `{}`\n\nEach cell: mean ± 95% confidence interval (Student t) over the seeds that finished; \
         seeds per arm in the second column.\n\n| arm | seeds |",
        sweep.output_dir.display()
    );
    for (_, name, _) in SHOWN {
        let _ = write!(md, " {name} |");
    }
    let _ = writeln!(md, "\n|---|---|{}", "---:|".repeat(SHOWN.len()));
    for label in &order {
        let s = seeds
            .get(label)
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|| "none".into());
        let _ = write!(md, "| {label} | {s} |");
        for (k, _, scale) in SHOWN {
            let cell = table
                .get(label)
                .and_then(|t| t.get(k))
                .map(|v| {
                    let (m, ci) = mean_ci(v);
                    let digits = if scale > 1.0 { 1 } else { 4 };
                    if v.len() < 2 {
                        format!("{:.digits$} (no interval: 1 seed)", m * scale)
                    } else {
                        format!("{:.digits$} ± {:.digits$}", m * scale, ci * scale)
                    }
                })
                .unwrap_or_else(|| "–".into());
            let _ = write!(md, " {cell} |");
        }
        let _ = writeln!(md);
    }
    if let Some(b) = &sweep.baseline {
        md += &paired_md(b, &order, &per_seed);
    }
    let failures = sweep.output_dir.join("failures.jsonl");
    if failures.exists() {
        let _ = writeln!(md, "\nFailed arms are listed in `{}`.", failures.display());
    }

    let mut paths = vec![];
    let pdir = sweep.output_dir.join("plots");
    for (k, name, scale) in SHOWN {
        let bars: Vec<plots::Bar> = order
            .iter()
            .filter_map(|l| {
                let v = table.get(l)?.get(k)?;
                let (m, ci) = mean_ci(v);
                Some((l.clone(), m * scale, if ci.is_nan() { 0.0 } else { ci * scale }))
            })
            .collect();
        if !bars.is_empty() {
            paths.extend(plots::bars(
                &pdir.join(k),
                &bars,
                ["arm (bars: mean over seeds; whiskers: 95% confidence interval)", name],
                name,
            )?);
        }
    }
    // training curves: mean over seeds per arm
    let mut panels: Vec<(String, Vec<plots::Series>)> = CURVE_KEYS.iter().map(|k| (k.to_string(), vec![])).collect();
    for label in &order {
        let Some(runs) = runs_of.get(label) else { continue };
        for (pi, k) in CURVE_KEYS.iter().enumerate() {
            let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for r in runs {
                for (s, v) in r.get(*k).into_iter().flatten() {
                    by_step.entry(*s).or_default().push(*v);
                }
            }
            // a 5-step moving average keeps the panels readable
            let pts: Vec<(f64, f64)> = by_step
                .iter()
                .map(|(s, v)| (*s as f64, v.iter().sum::<f64>() / v.len() as f64))
                .collect();
            let smooth: Vec<(f64, f64)> = (0..pts.len())
                .map(|i| {
                    let w = &pts[i.saturating_sub(4)..=i];
                    (pts[i].0, w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64)
                })
                .collect();
            panels[pi].1.push((label.clone(), smooth));
        }
    }
    if panels.iter().any(|p| !p.1.is_empty()) {
        let names = [
            "sampled accuracy",
            "reward (mean)",
            "token entropy (nats)",
            "EDIS (mean)",
        ];
        for (p, n) in panels.iter_mut().zip(names) {
            p.0 = n.to_string();
        }
        paths.extend(plots::curves(
            &pdir.join("training_curves"),
            &panels,
            "Training curves per arm (mean over seeds, 5-step moving average)",
        )?);
    }
    let _ = writeln!(md, "\nPlots: `{}/` ({} files).", pdir.display(), paths.len());
    std::fs::write(sweep.output_dir.join("sweep.md"), &md)?;
    Ok((md, paths))
}

/// Metrics of the paired-difference table, with display names and scales.
const PAIRED: [(&str, &str, f64); 5] = [
    ("accuracy_final", "greedy accuracy after RL (points)", 100.0),
    ("accuracy_change", "accuracy change from RL (points)", 100.0),
    ("eval_mean_at_n", "eval mean@N (points)", 100.0),
    ("eval_majority", "eval majority vote over N (points)", 100.0),
    ("eval_pass_at_n", "eval pass@N (points)", 100.0),
];

/// Each arm minus `baseline` on the same seed, mean ± 95% Student-t interval over the seeds
/// both finished (`n` in each cell).
fn paired_md(baseline: &str, order: &[String], per_seed: &BTreeMap<(String, u64), BTreeMap<String, f64>>) -> String {
    let mut md = format!(
        "\nPaired differences from `{baseline}` (same seed): mean ± 95% interval (Student t) over the seeds both arms \
         finished, n seeds.\n\n| arm |"
    );
    for (_, name, _) in PAIRED {
        let _ = write!(md, " {name} |");
    }
    let _ = writeln!(md, "\n|---|{}", "---:|".repeat(PAIRED.len()));
    for label in order.iter().filter(|l| *l != baseline) {
        let _ = write!(md, "| {label} |");
        for (k, _, scale) in PAIRED {
            let d: Vec<f64> = per_seed
                .iter()
                .filter(|((l, _), _)| l == label)
                .filter_map(|((_, seed), f)| Some(f.get(k)? - per_seed.get(&(baseline.to_string(), *seed))?.get(k)?))
                .collect();
            let cell = if d.is_empty() {
                "–".to_string()
            } else {
                let (m, ci) = mean_ci(&d);
                format!("{:+.1} ± {:.1} (n {})", m * scale, ci * scale, d.len())
            };
            let _ = write!(md, " {cell} |");
        }
        let _ = writeln!(md);
    }
    md
}

/// Figures of one finished arm (its `metrics.jsonl` lines given): key → value.
pub fn arm_figures(dir: &Path, lines: &[serde_json::Value]) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut m = BTreeMap::new();
    let mut before = None;
    let mut train: Vec<&serde_json::Value> = vec![];
    for j in lines {
        match j.get("eval/label").and_then(|x| x.as_str()) {
            Some("before_rl") => before = j["eval/greedy_accuracy"].as_f64(),
            Some("final") => {
                m.insert(
                    "accuracy_final".into(),
                    j["eval/greedy_accuracy"].as_f64().unwrap_or(f64::NAN),
                );
                if let Some(h) = j["eval/entropy_raw"].as_f64() {
                    m.insert("entropy_final".into(), h);
                }
            }
            _ if j.get("phase").and_then(|p| p.as_str()) == Some("rl") => train.push(j),
            _ => {}
        }
    }
    if let (Some(b), Some(&f)) = (before, m.get("accuracy_final")) {
        m.insert("accuracy_change".into(), f - b);
    }
    let last: Vec<&serde_json::Value> = train.iter().rev().take(10).copied().collect();
    for key in ["reward/mean", "edis/mean", "auroc/edis"] {
        let v: Vec<f64> = last.iter().filter_map(|j| j[key].as_f64()).collect();
        if !v.is_empty() {
            m.insert(
                format!("{}_last10", key.replace('/', "_")),
                v.iter().sum::<f64>() / v.len() as f64,
            );
        }
    }
    if let Ok(s) = std::fs::read_to_string(dir.join("summary.json")) {
        let s: serde_json::Value = serde_json::from_str(&s)?;
        if let Some(x) = s["seconds"].as_f64() {
            m.insert("train_seconds".into(), x);
        }
    }
    if let Ok(s) = std::fs::read_to_string(dir.join("eval/report.json")) {
        let r: Vec<crate::eval::report::CheckpointReport> = serde_json::from_str(&s)?;
        if let Some(all) = r.last().and_then(|c| c.sources.last()) {
            m.insert("eval_mean_at_n".into(), all.mean_at_n);
            m.insert("eval_greedy".into(), all.greedy_accuracy);
            m.insert("eval_majority".into(), all.majority_vote);
            if let Some((_, p)) = all.pass_at_k.iter().next_back() {
                m.insert("eval_pass_at_n".into(), *p);
            }
            for (sig, v) in &all.best_of_n {
                m.insert(format!("eval_best_of_n_{sig}"), *v);
            }
            // best-k-of-N at the largest pool
            for (sig, pools) in &all.best_k_of_n {
                if let Some(kept) = pools.values().last() {
                    m.insert(format!("eval_best_k_of_n_{sig}_mean"), kept.mean);
                    m.insert(format!("eval_best_k_of_n_{sig}_majority"), kept.majority);
                }
            }
        }
    }
    Ok(m)
}

/// Two-sided 95% Student-t quantile for `df` degrees of freedom.
pub fn t95(df: usize) -> f64 {
    const T: [f64; 10] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
    match df {
        0 => f64::NAN,
        1..=10 => T[df - 1],
        11..=20 => 2.086 + (20 - df) as f64 * 0.0142,
        21..=30 => 2.042 + (30 - df) as f64 * 0.0044,
        _ => 1.96,
    }
}

/// Mean and 95% confidence half-width (`t · s/√n`; 0 for one value).
pub fn mean_ci(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    (m, t95(v.len() - 1) * s / n.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Differences pair the seeds: arm b is baseline + 0.02 + a seed effect the pairing cancels;
    /// a seed the baseline lacks is left out (n 2).
    #[test]
    fn paired_differences_match_seeds() {
        let mut per_seed = BTreeMap::new();
        let fig = |acc: f64| BTreeMap::from([("accuracy_final".to_string(), acc)]);
        for (seed, effect) in [(0u64, 0.0), (1, 0.3)] {
            per_seed.insert(("base".to_string(), seed), fig(0.1 + effect));
            per_seed.insert(("b".to_string(), seed), fig(0.12 + effect));
        }
        per_seed.insert(("b".to_string(), 7), fig(0.9));
        let md = paired_md("base", &["base".into(), "b".into()], &per_seed);
        assert!(md.contains("| b | +2.0 ± 0.0 (n 2) |"), "{md}");
        assert!(!md.contains("| base |"));
    }
}
