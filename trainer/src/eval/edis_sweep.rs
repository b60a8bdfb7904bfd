//! EDIS recalibrated on one model (`entrl analyze edis`, `[edis_sweep]`): reads an evaluation's
//! trajectory artifact, splits its problems into a calibration share and a held-out test share
//! (whole problems, seeded), and on the calibration share tries every window `w` with every
//! (τ_b, τ_r) pair drawn from quantiles of the model's own entropy increases, keeping the highest
//! pooled AUROC (per window, and overall). Every reported figure is on the test share: the AUROC
//! of the paper's parameters, of the recalibrated ones, and of mean entropy (the paper's
//! baseline), with 95% intervals and paired differences from a bootstrap over test problems.
//! No model runs: the per-token entropies are in the artifact.

use std::collections::{BTreeMap, BTreeSet};

use entrl_rewards::Signal;
use entrl_rewards::signals::{EdisParams, edis, mean};
use entrl_rewards::stats::auroc;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::bootstrap::{Intervals, intervals_of, quantile, resampled};
use crate::config::EdisSweepSection;
use crate::trajectories::Record;

/// One (w, τ_b, τ_r) tried, with the quantiles its thresholds came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// EDIS parameters.
    pub params: EdisParams,
    /// Quantile of the calibration increases τ_b was read at.
    pub q_burst: f64,
    /// Quantile of the calibration increases τ_r was read at.
    pub q_rebound: f64,
    /// Pooled AUROC on the calibration share (`None`: one outcome only).
    pub calibration_auroc: Option<f64>,
}

/// The sweep's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The artifact read.
    pub source: String,
    /// Problems in the calibration and test shares.
    pub problems: [usize; 2],
    /// Completions in the test share and the share of them that are correct.
    pub test_samples: usize,
    /// Share of correct test completions.
    pub test_accuracy: f64,
    /// The paper's parameters (the run file's `[entropy.edis]`).
    pub paper: EdisParams,
    /// Share of the calibration increases the paper's τ_b (at its w) and τ_r stay under: how
    /// rarely its bursts and rebounds fire on this model.
    pub paper_quantiles: [f64; 2],
    /// Per window, the best candidate on the calibration share.
    pub per_window: Vec<Candidate>,
    /// The best candidate over all windows (ties: the first in window, then quantile order).
    pub chosen: Candidate,
    /// Test-share AUROCs: `edis_paper`, `edis_recalibrated`, `edis_w<w>`, `mean_entropy`, `nll`.
    pub test: BTreeMap<String, f64>,
    /// Bootstrap intervals over test problems and the paired differences.
    pub intervals: Intervals,
}

/// Problem ids of the calibration share: the distinct ids shuffled with `seed`, the first
/// `round(share · n)` of them (at least one problem on each side when there are two or more).
pub fn calibration_problems(records: &[Record], share: f64, seed: u64) -> BTreeSet<u64> {
    let mut ids: Vec<u64> = records
        .iter()
        .map(|r| r.prompt_index)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ids.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n = ids.len();
    let take = ((share * n as f64).round() as usize).clamp(usize::from(n > 1), n.saturating_sub(1).max(1));
    ids.into_iter().take(take).collect()
}

/// Every burst increase `H_{t+w} − H_t` of every trajectory, sorted.
pub fn burst_increases(records: &[&Record], w: usize) -> Vec<f64> {
    let mut v: Vec<f64> = records
        .iter()
        .flat_map(|r| r.entropies.windows(w + 1).map(|x| x[w] as f64 - x[0] as f64))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Every rebound `H_t − min_{s<t} H_s` (t ≥ 1) of every trajectory, sorted.
pub fn rebound_increases(records: &[&Record]) -> Vec<f64> {
    let mut v = vec![];
    for r in records {
        let mut min = f64::INFINITY;
        for (t, &h) in r.entropies.iter().enumerate() {
            if t > 0 {
                v.push(h as f64 - min);
            }
            min = min.min(h as f64);
        }
    }
    v.sort_by(f64::total_cmp);
    v
}

/// Pooled AUROC of EDIS under `p` (lower EDIS = predicted correct, as in the evaluation report).
pub fn edis_auroc(records: &[&Record], p: &EdisParams) -> Option<f64> {
    let conf: Vec<f64> = records
        .iter()
        .map(|r| Signal::Edis.confidence(edis(&r.entropies, p)))
        .collect();
    auroc(&conf, &records.iter().map(|r| r.correct).collect::<Vec<_>>())
}

/// Share of `sorted` at or below `x`.
fn share_below(sorted: &[f64], x: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.partition_point(|&v| v <= x) as f64 / sorted.len() as f64
}

/// The best candidate of window `w` on `calib` (ties keep the first in quantile order).
fn best_for_window(calib: &[&Record], w: usize, rebounds: &[f64], s: &EdisSweepSection) -> Option<Candidate> {
    let bursts = burst_increases(calib, w);
    let at = |v: &[f64], q: f64| if v.is_empty() { f64::INFINITY } else { quantile(v, q) };
    let mut best: Option<Candidate> = None;
    for &qb in &s.quantiles {
        for &qr in &s.quantiles {
            let params = EdisParams {
                window: w,
                tau_burst: at(&bursts, qb),
                tau_rebound: at(rebounds, qr),
            };
            let a = edis_auroc(calib, &params);
            if a.is_some() && best.as_ref().is_none_or(|b| a > b.calibration_auroc) {
                best = Some(Candidate {
                    params,
                    q_burst: qb,
                    q_rebound: qr,
                    calibration_auroc: a,
                });
            }
        }
    }
    best
}

/// The test share's scorers: name → EDIS parameters (mean entropy and NLL are added apart).
fn scorers(paper: &EdisParams, chosen: &Candidate, per_window: &[Candidate]) -> Vec<(String, EdisParams)> {
    let mut v = vec![
        ("edis_paper".to_string(), *paper),
        ("edis_recalibrated".to_string(), chosen.params),
    ];
    v.extend(
        per_window
            .iter()
            .map(|c| (format!("edis_w{}", c.params.window), c.params)),
    );
    v
}

/// One test completion's verdict and its confidence under each scorer (same order as the names).
struct Scored {
    correct: bool,
    conf: Vec<f64>,
}

fn aurocs(names: &[String], items: &[&Scored]) -> BTreeMap<String, f64> {
    let labels: Vec<bool> = items.iter().map(|x| x.correct).collect();
    let mut out = BTreeMap::new();
    for (j, name) in names.iter().enumerate() {
        let conf: Vec<f64> = items.iter().map(|x| x.conf[j]).collect();
        if let Some(a) = auroc(&conf, &labels) {
            out.insert(format!("auroc/{name}"), a);
        }
    }
    out
}

/// Runs the sweep on an artifact's records (`source` names it in the report).
pub fn sweep(
    records: &[Record],
    source: &str,
    paper: &EdisParams,
    s: &EdisSweepSection,
    resamples: usize,
) -> anyhow::Result<SweepReport> {
    let calib_ids = calibration_problems(records, s.calibration_share, s.seed);
    let (calib, test): (Vec<&Record>, Vec<&Record>) = records.iter().partition(|r| calib_ids.contains(&r.prompt_index));
    let rebounds = rebound_increases(&calib);
    let per_window: Vec<Candidate> = s
        .windows
        .iter()
        .filter_map(|&w| best_for_window(&calib, w, &rebounds, s))
        .collect();
    let Some(chosen) = per_window
        .iter()
        .fold(None::<&Candidate>, |b, c| match b {
            Some(b) if b.calibration_auroc >= c.calibration_auroc => Some(b),
            _ => Some(c),
        })
        .cloned()
    else {
        anyhow::bail!("{source}: the calibration share has only one outcome (all correct or all wrong): no AUROC");
    };
    let named = scorers(paper, &chosen, &per_window);
    let mut names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    names.extend(["mean_entropy".to_string(), "nll".to_string()]);
    let scored: Vec<Scored> = test
        .iter()
        .map(|r| {
            let mut conf: Vec<f64> = named
                .iter()
                .map(|(_, p)| Signal::Edis.confidence(edis(&r.entropies, p)))
                .collect();
            conf.push(Signal::MeanEntropy.confidence(mean(&r.entropies)));
            conf.push(Signal::Nll.confidence(r.signals.get(Signal::Nll)));
            Scored {
                correct: r.correct,
                conf,
            }
        })
        .collect();
    let full = aurocs(&names, &scored.iter().collect::<Vec<_>>());
    // Bootstrap over test problems: a resample draws whole problems with all their samples.
    let mut by_problem: BTreeMap<u64, Vec<&Scored>> = BTreeMap::new();
    for (r, x) in test.iter().zip(&scored) {
        by_problem.entry(r.prompt_index).or_default().push(x);
    }
    let groups: Vec<Vec<&Scored>> = by_problem.into_values().collect();
    let samples = resampled(&groups, resamples, s.seed, |pick| {
        aurocs(&names, &pick.iter().flat_map(|g| g.iter().copied()).collect::<Vec<_>>())
    });
    let pairs: Vec<(String, String)> = [
        ("edis_recalibrated", "mean_entropy"),
        ("edis_paper", "mean_entropy"),
        ("edis_recalibrated", "edis_paper"),
        ("edis_recalibrated", "nll"),
    ]
    .iter()
    .map(|(a, b)| (format!("auroc/{a}"), format!("auroc/{b}")))
    .collect();
    let paper_w = burst_increases(&calib, paper.window);
    Ok(SweepReport {
        source: source.to_string(),
        problems: [calib_ids.len(), groups.len()],
        test_samples: test.len(),
        test_accuracy: test.iter().filter(|r| r.correct).count() as f64 / test.len().max(1) as f64,
        paper: *paper,
        paper_quantiles: [
            share_below(&paper_w, paper.tau_burst),
            share_below(&rebounds, paper.tau_rebound),
        ],
        per_window,
        chosen,
        test: full.clone(),
        intervals: intervals_of(&full, &samples, resamples, &pairs),
    })
}

/// The report as Markdown.
pub fn markdown(r: &SweepReport) -> String {
    let iv = |k: &str| {
        r.intervals
            .metrics
            .get(&format!("auroc/{k}"))
            .map_or(String::new(), |[lo, hi]| format!(" [{lo:.3}, {hi:.3}]"))
    };
    let test = |k: &str| {
        r.test
            .get(&format!("auroc/{k}"))
            .map_or("—".to_string(), |a| format!("{a:.3}"))
    };
    let mut s = format!(
        "# EDIS recalibrated on this model\n\n{}\n\nCalibration: {} problems; test: {} problems, {} completions, {:.1}% correct. \
         The paper's τ_b = {} (w = {}) and τ_r = {} sit at the {:.1}th and {:.1}th percentiles of this model's \
         entropy increases.\n\n| scorer | w | τ_b (quantile) | τ_r (quantile) | AUROC calibration | AUROC test [95%] |\n|---|---:|---|---|---:|---|\n",
        r.source,
        r.problems[0],
        r.problems[1],
        r.test_samples,
        100.0 * r.test_accuracy,
        r.paper.tau_burst,
        r.paper.window,
        r.paper.tau_rebound,
        100.0 * r.paper_quantiles[0],
        100.0 * r.paper_quantiles[1],
    );
    s += &format!(
        "| EDIS, paper | {} | {} | {} | — | {}{} |\n",
        r.paper.window,
        r.paper.tau_burst,
        r.paper.tau_rebound,
        test("edis_paper"),
        iv("edis_paper")
    );
    let row = |label: &str, key: &str, c: &Candidate| {
        format!(
            "| {label} | {} | {:.4} ({}) | {:.4} ({}) | {} | {}{} |\n",
            c.params.window,
            c.params.tau_burst,
            c.q_burst,
            c.params.tau_rebound,
            c.q_rebound,
            c.calibration_auroc.map_or("—".into(), |a| format!("{a:.3}")),
            test(key),
            iv(key)
        )
    };
    for c in &r.per_window {
        s += &row("EDIS, recalibrated", &format!("edis_w{}", c.params.window), c);
    }
    s += &row("**EDIS, chosen on calibration**", "edis_recalibrated", &r.chosen);
    for k in ["mean_entropy", "nll"] {
        s += &format!("| {k} | | | | | {}{} |\n", test(k), iv(k));
    }
    s +=
        "\nPaired differences on the test problems (same resamples):\n\n| difference | value | 95% |\n|---|---:|---|\n";
    for (k, [d, lo, hi]) in &r.intervals.differences {
        s += &format!("| {k} | {d:+.3} | [{lo:+.3}, {hi:+.3}] |\n");
    }
    s
}

/// Writes `dir/report.{json,md}` and the plot.
pub fn write(r: &SweepReport, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(r)?)?;
    std::fs::write(dir.join("report.md"), markdown(r))?;
    plot(r, dir)
}

/// `dir/plots/edis_sweep.{svg,png}`: each scorer's test AUROC with half its 95% interval's width.
fn plot(r: &SweepReport, dir: &std::path::Path) -> anyhow::Result<()> {
    let bars: Vec<crate::plots::Bar> = r
        .test
        .iter()
        .map(|(k, &a)| {
            let half = r.intervals.metrics.get(k).map_or(0.0, |[lo, hi]| (hi - lo) / 2.0);
            (k.trim_start_matches("auroc/").to_string(), a, half)
        })
        .collect();
    crate::plots::bars(
        &dir.join("plots/edis_sweep"),
        &bars,
        [
            "scorer (bars: AUROC on the test problems; whiskers: half the 95% bootstrap interval's width)",
            "AUROC",
        ],
        "EDIS recalibrated per window vs the paper's thresholds, mean entropy and NLL",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrl_rewards::Signals;

    fn record(problem: u64, h: Vec<f32>, correct: bool) -> Record {
        let nll = -h.iter().map(|&x| x as f64).sum::<f64>();
        let mut signals = [0.0; 9];
        signals[Signal::Nll as usize] = nll;
        Record {
            prompt_index: problem,
            sample_index: 0,
            tokens: vec![0; h.len()],
            logprobs: vec![0.0; h.len()],
            self_certainty: vec![0.0; h.len()],
            confidence: vec![],
            top_logprobs: vec![],
            entropies: h,
            reward: f64::from(u8::from(correct)),
            correct,
            kept: false,
            truncated: false,
            advantage: 0.0,
            weight: 1.0,
            signals: Signals(signals),
        }
    }

    /// 60 problems × 4 samples: correct samples are calm (increases ≤ 0.05), incorrect ones
    /// rise by 0.4 nats and stay there — far below the paper's 1.36, so its EDIS is 0 everywhere.
    fn planted() -> Vec<Record> {
        let mut v = vec![];
        for p in 0..60u64 {
            for s in 0..4u64 {
                let wobble = 0.01 * ((p * 7 + s * 3) % 5) as f32;
                let correct = (p + s) % 3 != 0;
                let h: Vec<f32> = (0..20)
                    .map(|t| {
                        let base = 0.2 + if t % 2 == 0 { wobble } else { 0.0 };
                        if !correct && t >= 10 { base + 0.4 } else { base }
                    })
                    .collect();
                v.push(record(p, h, correct));
            }
        }
        v
    }

    #[test]
    fn the_split_keeps_whole_problems_apart_and_is_seeded() {
        let recs = planted();
        let a = calibration_problems(&recs, 0.5, 3);
        assert_eq!(a.len(), 30);
        assert_eq!(a, calibration_problems(&recs, 0.5, 3));
        assert_ne!(a, calibration_problems(&recs, 0.5, 4));
        assert_eq!(
            calibration_problems(&recs, 0.999, 0).len(),
            59,
            "one problem stays for the test"
        );
    }

    #[test]
    fn increases_are_the_definitions_terms() {
        let r = record(0, vec![1.0, 0.5, 2.0, 1.5], true);
        assert_eq!(burst_increases(&[&r], 2), vec![1.0, 1.0]);
        // rebounds: 0.5 − 1, 2 − 0.5, 1.5 − 0.5
        assert_eq!(rebound_increases(&[&r]), vec![-0.5, 1.0, 1.5]);
        // a burst/rebound over the thresholds counts exactly as entrl_rewards::signals::edis
        let p = EdisParams {
            window: 2,
            tau_burst: 0.99,
            tau_rebound: 1.2,
        };
        let var = entrl_rewards::signals::population_variance(&r.entropies);
        assert!((edis(&r.entropies, &p) - (2.0 + 1.0) / 2.0 * (1.0 + var)).abs() < 1e-12);
    }

    #[test]
    fn recalibration_finds_what_the_paper_thresholds_miss() {
        let recs = planted();
        let s = EdisSweepSection::default();
        let rep = sweep(&recs, "planted", &EdisParams::default(), &s, 200).unwrap();
        assert_eq!(rep.test["auroc/edis_paper"], 0.5, "τ 1.36 never fires on 0.4-nat rises");
        assert_eq!(rep.test["auroc/edis_recalibrated"], 1.0);
        assert_eq!(rep.paper_quantiles, [1.0, 1.0]);
        // the reported test AUROC is the chosen parameters' AUROC on the test problems
        let calib = calibration_problems(&recs, s.calibration_share, s.seed);
        let test: Vec<&Record> = recs.iter().filter(|r| !calib.contains(&r.prompt_index)).collect();
        assert_eq!(edis_auroc(&test, &rep.chosen.params), Some(1.0));
        let [d, lo, hi] = rep.intervals.differences["auroc/edis_recalibrated − auroc/edis_paper"];
        assert_eq!(d, 0.5);
        assert!(lo <= d && d <= hi && lo > 0.0, "[{lo}, {hi}]");
        assert_eq!(rep.problems, [30, 30]);
        assert!(markdown(&rep).contains("EDIS, chosen on calibration"));
    }

    #[test]
    fn one_outcome_in_calibration_is_an_error_naming_the_source() {
        let recs: Vec<Record> = (0..10).map(|p| record(p, vec![0.1, 0.2, 0.3], true)).collect();
        let e = sweep(
            &recs,
            "x.safetensors",
            &EdisParams::default(),
            &EdisSweepSection::default(),
            10,
        )
        .unwrap_err();
        assert!(e.to_string().contains("x.safetensors"), "{e}");
    }
}
