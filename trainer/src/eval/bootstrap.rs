//! 95% intervals of an evaluation's metrics by a paired bootstrap over problems: `eval.bootstrap`
//! resamples of the problems (with replacement), every metric of the source report recomputed on
//! each, percentile intervals; differences between two metrics (EDIS's AUROC − mean entropy's,
//! a signal's Borda vote − the majority vote) are taken on the same resamples, so their intervals
//! account for the pairing.

use std::collections::BTreeMap;

use entrl_rewards::Signal;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The intervals of one source report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Metric (flat name, e.g. `auroc/edis`, `borda/edis`, `pass@k/8`) → [2.5%, 97.5%].
    pub metrics: BTreeMap<String, [f64; 2]>,
    /// `a − b` → [difference on all problems, 2.5%, 97.5%], the difference taken per resample.
    pub differences: BTreeMap<String, [f64; 3]>,
}

/// The paired comparisons reported: each signal's AUROC against mean entropy's (the EDIS paper's
/// baseline), each signal's Borda vote and best-of-N against the majority vote.
pub fn comparisons() -> Vec<(String, String)> {
    let mut out = vec![];
    for s in Signal::ALL {
        let name = s.name();
        if s != Signal::MeanEntropy {
            out.push((format!("auroc/{name}"), "auroc/mean_entropy".to_string()));
        }
        out.push((format!("borda/{name}"), "majority_vote".to_string()));
        out.push((format!("best_of_n/{name}"), "majority_vote".to_string()));
    }
    out
}

/// Each flat metric of `stat` over `resamples` resamples of `items` (with replacement), seeded.
/// The resamples are drawn in order from one RNG, then evaluated in parallel (same result on any
/// number of threads).
pub fn resampled<T: Sync>(
    items: &[T],
    resamples: usize,
    seed: u64,
    stat: impl Fn(&[&T]) -> BTreeMap<String, f64> + Sync,
) -> BTreeMap<String, Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let picks: Vec<Vec<usize>> = (0..resamples)
        .map(|_| (0..items.len()).map(|_| rng.random_range(0..items.len())).collect())
        .collect();
    evaluated(&picks, |pick| {
        stat(&pick.iter().map(|&i| &items[i]).collect::<Vec<&T>>())
    })
}

/// `stat` of every drawn resample, in parallel, gathered per metric in draw order (the same on
/// any number of threads). Resamples drawn another way (e.g. within strata) share this step.
pub fn evaluated<P: Sync>(
    picks: &[P],
    stat: impl Fn(&P) -> BTreeMap<String, f64> + Sync,
) -> BTreeMap<String, Vec<f64>> {
    let stats: Vec<BTreeMap<String, f64>> = picks.par_iter().map(&stat).collect();
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for one in stats {
        for (k, v) in one {
            values.entry(k).or_default().push(v);
        }
    }
    values
}

/// The `q`-quantile of `sorted` with linear interpolation between order statistics (numpy's
/// default `percentile` method).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// [2.5%, 97.5%] of `values` (`None` when empty).
pub fn percentile_interval(values: &[f64]) -> Option<[f64; 2]> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some([quantile(&v, 0.025), quantile(&v, 0.975)])
}

/// Intervals of every flat metric and of [`comparisons`], from the metrics on all problems
/// (`full`) and on each resample. A difference is kept only when both sides were defined in every
/// resample (an AUROC is undefined on a resample without both outcomes).
pub fn intervals(full: &BTreeMap<String, f64>, samples: &BTreeMap<String, Vec<f64>>, resamples: usize) -> Intervals {
    intervals_of(full, samples, resamples, &comparisons())
}

/// [`intervals`] with the paired comparisons `pairs` (`a − b`).
pub fn intervals_of(
    full: &BTreeMap<String, f64>,
    samples: &BTreeMap<String, Vec<f64>>,
    resamples: usize,
    pairs: &[(String, String)],
) -> Intervals {
    let metrics = samples
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), percentile_interval(v)?)))
        .collect();
    let mut differences = BTreeMap::new();
    for (a, b) in pairs {
        let (Some(va), Some(vb), Some(pa), Some(pb)) = (samples.get(a), samples.get(b), full.get(a), full.get(b))
        else {
            continue;
        };
        if va.len() != resamples || vb.len() != resamples {
            continue;
        }
        let d: Vec<f64> = va.iter().zip(vb).map(|(x, y)| x - y).collect();
        let [lo, hi] = percentile_interval(&d).expect("resamples > 0");
        differences.insert(format!("{a} − {b}"), [pa - pb, lo, hi]);
    }
    Intervals {
        resamples,
        metrics,
        differences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [2.5, 97.5]) == [1.075, 3.925]
        let [lo, hi] = percentile_interval(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert!((lo - 1.075).abs() < 1e-12 && (hi - 3.925).abs() < 1e-12, "{lo} {hi}");
    }

    /// The bootstrap interval of a mean of 0/1 outcomes against normal theory, p ± 1.96·√(p(1−p)/n).
    #[test]
    fn interval_of_a_proportion_matches_normal_theory() {
        let n = 400;
        let outcomes: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 10 < 3))).collect();
        let mean = |xs: &[&f64]| {
            let mut m = BTreeMap::new();
            m.insert("p".to_string(), xs.iter().copied().sum::<f64>() / xs.len() as f64);
            m
        };
        let values = resampled(&outcomes, 4000, 7, mean);
        let [lo, hi] = percentile_interval(&values["p"]).unwrap();
        let half = 1.96 * (0.3f64 * 0.7 / n as f64).sqrt();
        assert!(
            (lo - (0.3 - half)).abs() < 0.006 && (hi - (0.3 + half)).abs() < 0.006,
            "[{lo}, {hi}] vs ±{half}"
        );
    }

    #[test]
    fn same_seed_same_intervals() {
        let x: Vec<f64> = (0..50).map(|i| (i * 7 % 13) as f64).collect();
        let stat = |xs: &[&f64]| BTreeMap::from([("m".to_string(), xs.iter().copied().sum::<f64>())]);
        assert_eq!(resampled(&x, 100, 1, stat), resampled(&x, 100, 1, stat));
    }
}
