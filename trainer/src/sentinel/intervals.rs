//! 95% intervals of the Sentinel's and its baselines' errors across domains: a bootstrap that
//! resamples the scored answers *within each domain* (each domain keeps its size), recomputes
//! every domain's true accuracy and every method's estimate from the same resampled answers, then
//! MAE, Spearman ρ and Pearson r across domains. The fitted Sentinel and the ATC thresholds are
//! held fixed: the intervals say how much the figures move with the evaluation answers, not with
//! refitting. Differences pair the Sentinel with each baseline on the same resamples.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::report::{DomainEstimate, summarise};
use crate::eval::bootstrap::{Intervals, evaluated, intervals_of};

/// A domain rebuilt from the answers at `pick`.
fn resampled_domain(d: &DomainEstimate, pick: &[usize]) -> DomainEstimate {
    let mean = |v: &[f64]| pick.iter().map(|&i| v[i]).sum::<f64>() / pick.len() as f64;
    DomainEstimate {
        accuracy: pick.iter().filter(|&&i| d.correct[i]).count() as f64 / pick.len() as f64,
        estimates: d.values.iter().map(|(k, v)| (k.clone(), mean(v))).collect(),
        values: BTreeMap::new(),
        correct: vec![],
        ..d.clone()
    }
}

fn flat(domains: &[DomainEstimate]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for s in summarise(domains) {
        m.insert(format!("mae/{}", s.method), s.mae);
        if let Some(r) = s.spearman {
            m.insert(format!("spearman/{}", s.method), r);
        }
        if let Some(r) = s.pearson {
            m.insert(format!("pearson/{}", s.method), r);
        }
    }
    m
}

/// Intervals over `resamples` stratified resamples (`None` when there are none, or a domain
/// lacks its per-answer values, as in a report read back from JSON).
pub fn intervals(domains: &[DomainEstimate], resamples: usize, seed: u64) -> Option<Intervals> {
    if resamples == 0 || domains.is_empty() || domains.iter().any(|d| d.correct.is_empty()) {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let picks: Vec<Vec<Vec<usize>>> = (0..resamples)
        .map(|_| {
            domains
                .iter()
                .map(|d| {
                    (0..d.correct.len())
                        .map(|_| rng.random_range(0..d.correct.len()))
                        .collect()
                })
                .collect()
        })
        .collect();
    let samples = evaluated(&picks, |pick| {
        let ds: Vec<DomainEstimate> = domains.iter().zip(pick).map(|(d, p)| resampled_domain(d, p)).collect();
        flat(&ds)
    });
    let methods: Vec<String> = domains[0].values.keys().filter(|m| *m != "sentinel").cloned().collect();
    let pairs: Vec<(String, String)> = ["mae", "spearman"]
        .iter()
        .flat_map(|stat| {
            methods
                .iter()
                .map(move |m| (format!("{stat}/sentinel"), format!("{stat}/{m}")))
        })
        .collect();
    Some(intervals_of(&flat(domains), &samples, resamples, &pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(name: &str, correct: Vec<bool>, sentinel: Vec<f64>) -> DomainEstimate {
        let n = correct.len() as f64;
        let values: BTreeMap<String, Vec<f64>> = [
            ("sentinel".to_string(), sentinel),
            ("atc[x]".to_string(), vec![0.5; correct.len()]),
        ]
        .into();
        DomainEstimate {
            name: name.into(),
            train: false,
            answers: correct.len(),
            accuracy: correct.iter().filter(|&&c| c).count() as f64 / n,
            estimates: values
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().sum::<f64>() / n))
                .collect(),
            auroc: None,
            values,
            correct,
        }
    }

    /// A Sentinel whose P(correct) is each answer's verdict estimates every resample exactly:
    /// its MAE interval is [0, 0]; a constant baseline's MAE is the mean |acc − 0.5|, and the
    /// paired difference is negative in every resample.
    #[test]
    fn an_exact_estimator_has_zero_error_in_every_resample() {
        let ds: Vec<DomainEstimate> = [0.2, 0.5, 0.9]
            .iter()
            .enumerate()
            .map(|(i, &acc)| {
                let c: Vec<bool> = (0..50).map(|j| (j as f64) < acc * 50.0).collect();
                let p = c.iter().map(|&x| f64::from(u8::from(x))).collect();
                domain(&format!("d{i}"), c, p)
            })
            .collect();
        let iv = intervals(&ds, 200, 5).unwrap();
        assert_eq!(iv.metrics["mae/sentinel"], [0.0, 0.0]);
        let [d, lo, hi] = iv.differences["mae/sentinel − mae/atc[x]"];
        assert!((d + (0.3 + 0.0 + 0.4) / 3.0).abs() < 1e-12, "{d}");
        assert!(lo <= d && d <= hi && hi < 0.0, "[{lo}, {hi}]");
        assert!(intervals(&ds, 0, 5).is_none());
    }
}
