//! The per-token covariance of log-prob and advantage over one micro-batch, and the per-token
//! factors a covariance control hands the policy loss ([`super::cov`] picks the control).

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

/// The share of tokens a covariance control selects must lie in (0, 1]; the message names the key.
pub fn check_ratio(ratio: f64) -> Result<(), String> {
    if !(ratio > 0.0 && ratio <= 1.0) {
        return Err(format!(
            "key 'entropy.cov_control.ratio' must be in (0, 1], got {ratio}"
        ));
    }
    Ok(())
}
