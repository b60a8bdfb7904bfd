//! Covariance-based entropy control (Cui et al., *The Entropy Mechanism of RL for Reasoning LMs*,
//! arXiv 2505.22617; verl's `clip_cov` / `kl_cov` policy losses): the covariance of a token's
//! log-prob and its advantage drives the entropy change, so the few tokens with the largest
//! covariance are either dropped from the gradient (Clip-Cov, [`super::clip_cov`]) or pulled back
//! by a KL-like penalty (KL-Cov, [`super::kl_cov`]). Selection runs on the host over one
//! micro-batch; the tensors only receive the resulting per-token factors.

use serde::{Deserialize, Serialize};

use super::clip_cov::ClipCov;
pub use super::covariance::{CovTerms, TokenView, mean_covariance, token_covariance};
use super::kl_cov::KlCov;

/// Which covariance control the policy loss applies (`entropy.cov_control`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CovControl {
    /// The plain clipped surrogate.
    #[default]
    None,
    /// Drop a random share of the high-covariance tokens from the surrogate.
    ClipCov(ClipCov),
    /// Penalise `|log ρ|` on the top-covariance tokens; the surrogate is not clipped.
    KlCov(KlCov),
}

impl CovControl {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::None => Ok(()),
            Self::ClipCov(c) => c.validate(),
            Self::KlCov(c) => c.validate(),
        }
    }

    /// The control's terms for one micro-batch; `seed` drives Clip-Cov's random pick.
    pub fn terms(&self, v: &TokenView, clip: (f64, f64), seed: u64) -> CovTerms {
        match self {
            Self::None => CovTerms::default(),
            Self::ClipCov(c) => c.terms(v, clip, seed),
            Self::KlCov(c) => c.terms(v),
        }
    }
}
