//! Clip-Cov (verl's `compute_policy_loss_clip_cov`): among the valid tokens whose clipped branch
//! is not already active and whose covariance lies in `(lb, ub)`, a random `max(⌊ratio·N⌋, 1)`
//! (N = valid tokens; all of them if fewer qualify) are dropped from the surrogate.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::covariance::{CovTerms, TokenView, check_ratio, token_covariance};

/// Clip-Cov's knobs; defaults are verl's entropy recipe (ratio 2e-4, bounds 1 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClipCov {
    /// Share of the valid tokens to drop.
    pub ratio: f64,
    /// Lower covariance bound of a candidate.
    pub lb: f64,
    /// Upper covariance bound of a candidate.
    pub ub: f64,
}

impl Default for ClipCov {
    fn default() -> Self {
        Self {
            ratio: 2e-4,
            lb: 1.0,
            ub: 5.0,
        }
    }
}

impl ClipCov {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        check_ratio(self.ratio)?;
        if self.lb.is_nan() || self.ub.is_nan() || self.lb >= self.ub {
            return Err(format!(
                "key 'entropy.cov_control': need lb < ub, got {} and {}",
                self.lb, self.ub
            ));
        }
        Ok(())
    }

    /// The keep factors of one micro-batch (`clip` = (1 − ε_low, 1 + ε_high)).
    pub fn terms(&self, v: &TokenView, clip: (f64, f64), seed: u64) -> CovTerms {
        let cov = token_covariance(v);
        let n_valid = v.mask.iter().filter(|&&m| m).count();
        let budget = ((self.ratio * n_valid as f64) as usize).max(1);
        let mut candidates: Vec<usize> = (0..cov.len())
            .filter(|&i| {
                let Some(c) = cov[i] else { return false };
                let ratio = ((v.logp[i] - v.old[i]) as f64).exp();
                let a = v.adv_at(i);
                // verl's clip_by_origin: the clipped branch is the larger loss already
                let clipped_active = -a * ratio.clamp(clip.0, clip.1) > -a * ratio;
                !clipped_active && c > self.lb && c < self.ub
            })
            .collect();
        candidates.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        candidates.truncate(budget);
        let mut keep = vec![1f32; cov.len()];
        for &i in &candidates {
            keep[i] = 0.0;
        }
        CovTerms {
            selected: candidates.len(),
            keep: Some(keep),
            penalty: None,
            unclipped: false,
        }
    }
}
