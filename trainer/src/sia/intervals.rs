//! 95% intervals of the SIA comparisons by a bootstrap over chains (each resample draws whole
//! traces with replacement, correct and incorrect together, so class sizes vary as they would).
//! Per estimator: the mean drop of h per step and the final h of correct and incorrect chains,
//! and the accuracy of chains without and with monotonicity violations; differences pair them on
//! the same resamples (correct − incorrect drop; incorrect − correct final h; monotone −
//! violating accuracy).

use std::collections::BTreeMap;

use entrl_rewards::sia::Curve;

use super::Trace;
use crate::eval::bootstrap::{Intervals, intervals_of, resampled};

/// The estimators' names and curves of a trace (`sampled_answers` only when it was estimated).
fn curves(t: &Trace) -> Vec<(&'static str, &Curve)> {
    let mut v = vec![("gold_teacher_forced", &t.gold)];
    if let Some(c) = &t.sampled {
        v.push(("sampled_answers", c));
    }
    v
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Flat statistics of a set of traces (a key is absent when its group is empty).
fn stats(traces: &[&Trace], tol: f64) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for name in ["gold_teacher_forced", "sampled_answers"] {
        let of: Vec<(&Curve, bool)> = traces
            .iter()
            .filter_map(|t| curves(t).into_iter().find(|c| c.0 == name).map(|c| (c.1, t.correct)))
            .collect();
        for (class, want) in [("correct", true), ("incorrect", false)] {
            let group = || of.iter().filter(move |x| x.1 == want).map(|x| x.0);
            if let Some(d) = mean(group().filter(|c| c.h.len() > 1).map(Curve::mean_drop)) {
                m.insert(format!("{name}/drop_per_step/{class}"), d);
            }
            if let Some(h) = mean(group().map(|c| c.h[c.h.len() - 1])) {
                m.insert(format!("{name}/h_final/{class}"), h);
            }
        }
        for (label, monotone) in [("monotone", true), ("violating", false)] {
            let acc = mean(
                of.iter()
                    .filter(|x| (x.0.violations(tol) == 0) == monotone)
                    .map(|x| f64::from(u8::from(x.1))),
            );
            if let Some(a) = acc {
                m.insert(format!("{name}/accuracy/{label}"), a);
            }
        }
    }
    m
}

/// Intervals over `resamples` resamples of the traces (`None` without traces or resamples).
pub fn intervals(traces: &[Trace], tol: f64, resamples: usize, seed: u64) -> Option<Intervals> {
    if traces.is_empty() || resamples == 0 {
        return None;
    }
    let full = stats(&traces.iter().collect::<Vec<_>>(), tol);
    let samples = resampled(traces, resamples, seed, |pick| stats(pick, tol));
    let pairs: Vec<(String, String)> = ["gold_teacher_forced", "sampled_answers"]
        .iter()
        .flat_map(|n| {
            [
                (
                    format!("{n}/drop_per_step/correct"),
                    format!("{n}/drop_per_step/incorrect"),
                ),
                (format!("{n}/h_final/incorrect"), format!("{n}/h_final/correct")),
                (format!("{n}/accuracy/monotone"), format!("{n}/accuracy/violating")),
            ]
        })
        .collect();
    Some(intervals_of(&full, &samples, resamples, &pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(index: usize, correct: bool, h: Vec<f64>) -> Trace {
        Trace {
            index,
            correct,
            steps: h.len() - 1,
            gold: Curve { h: h.clone() },
            sampled: None,
        }
    }

    /// Correct chains drop 0.3 per step and incorrect ones 0.1: the difference is 0.2 on all
    /// traces and in every resample that keeps both classes (its interval is [0.2, 0.2]).
    #[test]
    fn differences_pair_the_classes_on_the_same_resamples() {
        let traces: Vec<Trace> = (0..40)
            .map(|i| {
                if i % 2 == 0 {
                    trace(i, true, vec![1.0, 0.7, 0.4])
                } else {
                    trace(i, false, vec![1.0, 0.9, 1.2, 0.8])
                }
            })
            .collect();
        let iv = intervals(&traces, 0.0, 200, 3).unwrap();
        let [d, lo, hi] =
            iv.differences["gold_teacher_forced/drop_per_step/correct − gold_teacher_forced/drop_per_step/incorrect"];
        assert!((d - (0.3 - 0.2 / 3.0)).abs() < 1e-12, "{d}");
        assert!((lo - d).abs() < 1e-9 && (hi - d).abs() < 1e-9, "[{lo}, {hi}]");
        // all violating chains are incorrect, all monotone ones correct
        assert_eq!(
            iv.differences["gold_teacher_forced/accuracy/monotone − gold_teacher_forced/accuracy/violating"][0],
            1.0
        );
        assert!(!iv.metrics.keys().any(|k| k.starts_with("sampled_answers")));
    }
}
