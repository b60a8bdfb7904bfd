//! Entropy terms of the loss (METHODS §3): the token-mean entropy that EM-FT minimises and the
//! regulariser adds, and TRL's high-entropy token mask (`top_entropy_quantile`).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// `Σ_{b,t} H[b,t]·mask[b,t] / total_tokens` `[1]`: the token mean over the whole batch when every
/// micro-batch divides by the batch's token count, so micro-batch terms add up. `h` `[B, T]` keeps
/// its gradient (∂H/∂θ through the full-vocabulary softmax; the sampled tokens are constants).
pub fn entropy_term<B: Backend>(h: Tensor<B, 2>, mask: Tensor<B, 2>, total_tokens: usize) -> Tensor<B, 1> {
    (h * mask).sum() / total_tokens.max(1) as f64
}

/// TRL's `get_high_entropy_mask`: the threshold is the `(1 − ρ)` quantile (linear interpolation,
/// as `torch.quantile`) of the entropies of the tokens in `mask`; a token stays when it is in
/// `mask` and its entropy is ≥ the threshold. `ρ = 1` keeps every masked token.
pub fn high_entropy_mask(h: &[f32], mask: &[bool], rho: f64) -> Vec<bool> {
    assert_eq!(h.len(), mask.len());
    let mut v: Vec<f64> = h
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|(&x, _)| x as f64)
        .collect();
    if v.is_empty() || rho >= 1.0 {
        return mask.to_vec();
    }
    v.sort_by(f64::total_cmp);
    let pos = (1.0 - rho) * (v.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let threshold = if lo + 1 < v.len() {
        v[lo] + frac * (v[lo + 1] - v[lo])
    } else {
        v[lo]
    };
    h.iter().zip(mask).map(|(&x, &m)| m && x as f64 >= threshold).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_mask_by_hand() {
        // masked entropies {0.1, 0.2, 0.3, 0.4, 0.5}; ρ = 0.4 → 0.6 quantile at position 2.4 → 0.34
        let h = [0.5f32, 0.1, 9.0, 0.3, 0.2, 0.4];
        let m = [true, true, false, true, true, true];
        assert_eq!(
            high_entropy_mask(&h, &m, 0.4),
            vec![true, false, false, false, false, true]
        );
        assert_eq!(high_entropy_mask(&h, &m, 1.0), m.to_vec());
        assert_eq!(high_entropy_mask(&h, &[false; 6], 0.2), vec![false; 6]);
    }
}

/// TRL's adaptive entropy coefficient (`use_adaptive_entropy`, from Skywork-OR1): the entropy bonus
/// coefficient `c` moves after every optimizer step — `min(c + delta, max)` when the step's token-mean
/// entropy is at or below `target`, else `max(c − delta, min)`. Its value is training state: saved in
/// checkpoints and restored on resume.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveEntropy {
    /// Target token entropy (nats).
    pub target: f64,
    /// Step of the coefficient.
    pub delta: f64,
    /// Lowest coefficient.
    pub min: f64,
    /// Highest coefficient.
    pub max: f64,
}

impl Default for AdaptiveEntropy {
    /// TRL's defaults: target 0.2, delta 0.005, range [0, 1].
    fn default() -> Self {
        Self {
            target: 0.2,
            delta: 0.005,
            min: 0.0,
            max: 1.0,
        }
    }
}

impl AdaptiveEntropy {
    /// The coefficient after a step whose token-mean entropy was `entropy`.
    pub fn next_coef(&self, coef: f64, entropy: f64) -> f64 {
        if entropy <= self.target {
            (coef + self.delta).min(self.max)
        } else {
            (coef - self.delta).max(self.min)
        }
    }

    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.target >= 0.0 && self.delta >= 0.0 && self.min >= 0.0 && self.min <= self.max && self.max.is_finite())
        {
            return Err(format!(
                "key 'entropy.adaptive' needs target >= 0, delta >= 0 and 0 <= min <= max, got {self:?}"
            ));
        }
        Ok(())
    }
}
