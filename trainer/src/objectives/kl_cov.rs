//! KL-Cov (verl's `compute_policy_loss_kl_cov`): the surrogate is the unclipped `−ρA` for every
//! token, and the `max(⌊ratio·N⌋, 1)` valid tokens (N = valid tokens) with the largest covariance
//! get `+coef·|log ρ|` on top.

use serde::{Deserialize, Serialize};

use super::covariance::{CovTerms, TokenView, check_ratio, token_covariance};

/// KL-Cov's knobs; defaults are verl's entropy recipe (ratio 2e-4, coefficient 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlCov {
    /// Share of the valid tokens penalised.
    pub ratio: f64,
    /// Penalty coefficient (verl's `ppo_kl_coef`).
    pub coef: f64,
}

impl Default for KlCov {
    fn default() -> Self {
        Self { ratio: 2e-4, coef: 1.0 }
    }
}

impl KlCov {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        check_ratio(self.ratio)?;
        if !(self.coef >= 0.0 && self.coef.is_finite()) {
            return Err(format!(
                "key 'entropy.cov_control.coef' must be >= 0, got {}",
                self.coef
            ));
        }
        Ok(())
    }

    /// The penalty coefficients of one micro-batch (ties: the lower flat index first).
    pub fn terms(&self, v: &TokenView) -> CovTerms {
        let cov = token_covariance(v);
        let mut valid: Vec<(usize, f64)> = cov.iter().enumerate().filter_map(|(i, c)| c.map(|c| (i, c))).collect();
        let mut penalty = vec![0f32; cov.len()];
        let k = ((valid.len() as f64 * self.ratio) as usize).max(1).min(valid.len());
        valid.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for &(i, _) in &valid[..k] {
            penalty[i] = self.coef as f32;
        }
        CovTerms {
            keep: None,
            penalty: Some(penalty),
            unclipped: true,
            selected: k,
        }
    }
}
