//! Advantage estimators over a batch of rewards laid out group by group: each group is a range of
//! consecutive entries (G per prompt for plain rollouts; ragged for trees and filtered groups).
//! Plain f64: these are cheap and the same numbers feed metrics and the loss.

use std::ops::Range;

use super::{AdvantageEstimator, ScaleRewards};

/// `n / g` groups of `g` consecutive entries.
pub fn uniform_groups(n: usize, g: usize) -> Vec<Range<usize>> {
    assert!(
        g > 0 && n.is_multiple_of(g),
        "rewards ({n}) must be whole groups of {g}"
    );
    (0..n / g).map(|i| i * g..(i + 1) * g).collect()
}

/// Consecutive ranges of the given lengths (ragged groups: trees, filtered groups).
pub fn consecutive(lens: impl IntoIterator<Item = usize>) -> Vec<Range<usize>> {
    lens.into_iter()
        .scan(0, |start, n| {
            let r = *start..*start + n;
            *start = r.end;
            Some(r)
        })
        .collect()
}

fn assert_partition(n: usize, groups: &[Range<usize>]) {
    let mut next = 0;
    for r in groups {
        assert!(
            r.start == next && r.end > r.start,
            "groups must tile 0..{n} in order: {groups:?}"
        );
        next = r.end;
    }
    assert_eq!(next, n, "groups must cover all {n} rewards");
}

/// Unbiased standard deviation (n − 1), 0 for fewer than two values (as torch/TRL).
pub fn std_unbiased(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// GRPO advantages: `(r − group mean) / (std + eps)` with std per `scale`.
pub fn grpo(rewards: &[f64], groups: &[Range<usize>], scale: ScaleRewards, eps: f64) -> Vec<f64> {
    assert_partition(rewards.len(), groups);
    let batch_std = std_unbiased(rewards);
    groups
        .iter()
        .flat_map(|r| {
            let grp = &rewards[r.clone()];
            let mean = grp.iter().sum::<f64>() / grp.len() as f64;
            let std = match scale {
                ScaleRewards::Group => std_unbiased(grp),
                ScaleRewards::Batch => batch_std,
                ScaleRewards::None => 0.0,
            };
            grp.iter()
                .map(move |r| {
                    if scale == ScaleRewards::None {
                        r - mean
                    } else {
                        (r - mean) / (std + eps)
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// RLOO advantages: `r_i − (1/(G−1)) Σ_{j≠i} r_j` within each group (every group needs G > 1).
pub fn rloo(rewards: &[f64], groups: &[Range<usize>]) -> Vec<f64> {
    assert_partition(rewards.len(), groups);
    assert!(groups.iter().all(|r| r.len() > 1), "RLOO needs groups of G > 1");
    groups
        .iter()
        .flat_map(|r| {
            let grp = &rewards[r.clone()];
            let (sum, g) = (grp.iter().sum::<f64>(), grp.len());
            grp.iter()
                .map(move |r| r - (sum - r) / (g - 1) as f64)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Dispatch on the estimator.
pub fn compute(
    est: AdvantageEstimator,
    rewards: &[f64],
    groups: &[Range<usize>],
    scale: ScaleRewards,
    eps: f64,
) -> Vec<f64> {
    match est {
        AdvantageEstimator::Grpo => grpo(rewards, groups, scale, eps),
        AdvantageEstimator::Rloo => rloo(rewards, groups),
    }
}

/// Share of groups whose rewards are all equal (they carry no learning signal).
pub fn frac_zero_std(rewards: &[f64], groups: &[Range<usize>]) -> f64 {
    if groups.is_empty() {
        return 0.0;
    }
    groups
        .iter()
        .filter(|r| {
            let grp = &rewards[(*r).clone()];
            grp.iter().all(|x| (x - grp[0]).abs() < 1e-12)
        })
        .count() as f64
        / groups.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_reward_groups_get_zero_advantage() {
        let r = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let g3 = uniform_groups(6, 3);
        for a in [
            grpo(&r[..6], &g3, ScaleRewards::Group, 1e-4),
            grpo(&r[..6], &g3, ScaleRewards::Batch, 1e-4),
            rloo(&r[..6], &g3),
        ] {
            assert!(a.iter().all(|&x| x == 0.0), "{a:?}");
        }
        // pairs [1,1] [1,0] [0,0] [1,0]: two of four are degenerate
        assert_eq!(frac_zero_std(&r, &uniform_groups(8, 2)), 0.5);
        // ragged groups [1,1,1] [0,0] [0,1,0]: one of three has signal
        let ragged = [0..3, 3..5, 5..8];
        assert!((frac_zero_std(&[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0], &ragged) - 2.0 / 3.0).abs() < 1e-12);
        let a = grpo(
            &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            &ragged,
            ScaleRewards::None,
            0.0,
        );
        assert_eq!(a[..5], [0.0; 5]);
        assert!((a[6] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn rloo_is_scaled_centered_reward() {
        // A_i = G/(G−1)·(r_i − mean)
        let r = [3.0, 1.0, 0.0, 4.0];
        let m = 2.0;
        for (a, ri) in rloo(&r, &uniform_groups(4, 4)).iter().zip(r) {
            assert!((a - 4.0 / 3.0 * (ri - m)).abs() < 1e-12);
        }
    }
}
