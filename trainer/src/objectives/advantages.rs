//! Advantage estimators over a batch of rewards laid out group by group (`G` consecutive entries
//! per prompt). Plain f64: these are cheap and the same numbers feed metrics and the loss.

use super::{AdvantageEstimator, ScaleRewards};

/// Unbiased standard deviation (n − 1), 0 for fewer than two values (as torch/TRL).
pub fn std_unbiased(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// GRPO advantages: `(r − group mean) / (std + eps)` with std per `scale`.
pub fn grpo(rewards: &[f64], g: usize, scale: ScaleRewards, eps: f64) -> Vec<f64> {
    assert!(
        g > 0 && rewards.len().is_multiple_of(g),
        "rewards ({}) must be whole groups of {g}",
        rewards.len()
    );
    let batch_std = std_unbiased(rewards);
    rewards
        .chunks(g)
        .flat_map(|grp| {
            let mean = grp.iter().sum::<f64>() / g as f64;
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

/// RLOO advantages: `r_i − (1/(G−1)) Σ_{j≠i} r_j`.
pub fn rloo(rewards: &[f64], g: usize) -> Vec<f64> {
    assert!(
        g > 1 && rewards.len().is_multiple_of(g),
        "RLOO needs whole groups of G > 1"
    );
    rewards
        .chunks(g)
        .flat_map(|grp| {
            let sum: f64 = grp.iter().sum();
            grp.iter()
                .map(move |r| r - (sum - r) / (g - 1) as f64)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Dispatch on the estimator.
pub fn compute(est: AdvantageEstimator, rewards: &[f64], g: usize, scale: ScaleRewards, eps: f64) -> Vec<f64> {
    match est {
        AdvantageEstimator::Grpo => grpo(rewards, g, scale, eps),
        AdvantageEstimator::Rloo => rloo(rewards, g),
    }
}

/// Share of groups whose rewards are all equal (they carry no learning signal).
pub fn frac_zero_std(rewards: &[f64], g: usize) -> f64 {
    let n = rewards.len() / g;
    if n == 0 {
        return 0.0;
    }
    rewards
        .chunks(g)
        .filter(|grp| grp.iter().all(|r| (r - grp[0]).abs() < 1e-12))
        .count() as f64
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_reward_groups_get_zero_advantage() {
        let r = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        for a in [
            grpo(&r[..6], 3, ScaleRewards::Group, 1e-4),
            grpo(&r[..6], 3, ScaleRewards::Batch, 1e-4),
            rloo(&r[..6], 3),
        ] {
            assert!(a.iter().all(|&x| x == 0.0), "{a:?}");
        }
        // pairs [1,1] [1,0] [0,0] [1,0]: two of four are degenerate
        assert_eq!(frac_zero_std(&r, 2), 0.5);
    }

    #[test]
    fn rloo_is_scaled_centered_reward() {
        // A_i = G/(G−1)·(r_i − mean)
        let r = [3.0, 1.0, 0.0, 4.0];
        let m = 2.0;
        for (a, ri) in rloo(&r, 4).iter().zip(r) {
            assert!((a - 4.0 / 3.0 * (ri - m)).abs() < 1e-12);
        }
    }
}
