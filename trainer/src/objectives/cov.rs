//! Covariance-based entropy control (Cui et al., *The Entropy Mechanism of RL for Reasoning LMs*,
//! arXiv 2505.22617; verl's `clip_cov` / `kl_cov` policy losses): the covariance of a token's
//! log-prob and its advantage drives the entropy change, so the few tokens with the largest
//! covariance are either dropped from the gradient (Clip-Cov, [`super::clip_cov`]) or pulled back
//! by a KL-like penalty (KL-Cov, [`super::kl_cov`]). Selection runs on the host over one
//! micro-batch; the tensors only receive the resulting per-token factors.

use serde::{Deserialize, Serialize};

use super::clip_cov::ClipCov;
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

/// One micro-batch's per-token values on the host, row-major `[B, T]`.
pub struct TokenView<'a> {
    /// Current log-probs (detached).
    pub logp: &'a [f32],
    /// Rollout-policy log-probs.
    pub old: &'a [f32],
    /// Per-row advantage `[B]`.
    pub adv: &'a [f32],
    /// Loss mask.
    pub mask: &'a [bool],
    /// Columns T.
    pub cols: usize,
}

impl TokenView<'_> {
    /// The advantage of flat token `i`.
    pub fn adv_at(&self, i: usize) -> f64 {
        self.adv[i / self.cols] as f64
    }
}

/// What a control does to the micro-batch's tokens.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CovTerms {
    /// Multiplies each token's surrogate (0 = dropped), `[B·T]`; `None` keeps all.
    pub keep: Option<Vec<f32>>,
    /// Coefficient of `|log ρ|` per token (0 = none), `[B·T]`; `None` adds nothing.
    pub penalty: Option<Vec<f32>>,
    /// Use the unclipped surrogate `−ρA` (KL-Cov) instead of the clipped one.
    pub unclipped: bool,
    /// Tokens selected.
    pub selected: usize,
}

/// `(A_i − Ā)(logp_i − l̄ogp)` for every valid token (means over valid tokens), `None` elsewhere.
pub fn token_covariance(v: &TokenView) -> Vec<Option<f64>> {
    let valid: Vec<usize> = (0..v.mask.len()).filter(|&i| v.mask[i]).collect();
    let n = valid.len().max(1) as f64;
    let mean_a = valid.iter().map(|&i| v.adv_at(i)).sum::<f64>() / n;
    let mean_l = valid.iter().map(|&i| v.logp[i] as f64).sum::<f64>() / n;
    (0..v.mask.len())
        .map(|i| v.mask[i].then(|| (v.adv_at(i) - mean_a) * (v.logp[i] as f64 - mean_l)))
        .collect()
}

/// Mean of [`token_covariance`] over valid tokens: the `entropy/cov_logp_adv` diagnostic.
pub fn mean_covariance(v: &TokenView) -> f64 {
    let c: Vec<f64> = token_covariance(v).into_iter().flatten().collect();
    if c.is_empty() {
        0.0
    } else {
        c.iter().sum::<f64>() / c.len() as f64
    }
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
