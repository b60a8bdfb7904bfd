//! The clipped policy-gradient loss on tensors (GRPO family, RLOO, EM-RL share it).
//!
//! Inputs are `[B, T]` over completion positions: current log-probs (with gradient), old
//! log-probs (rollout policy, constant), reference log-probs (constant, only when β > 0), a 0/1
//! mask, and per-sequence advantages `[B]` (already multiplied by any EDIS weight).

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

use super::{LossType, Normalizer, PolicyLossConfig};

/// Loss of one micro-batch, scaled so that micro-batch losses add up to the full-batch loss.
pub struct PolicyLoss<B: Backend> {
    /// Scalar loss `[1]` to backpropagate.
    pub loss: Tensor<B, 1>,
    /// Σ over unmasked tokens of k3 KL (for metrics; 0 when β = 0).
    pub kl_sum: f64,
    /// Count of tokens clipped below / above.
    pub clipped_low: f64,
    /// Count clipped above.
    pub clipped_high: f64,
}

/// What a covariance control (Clip-Cov, KL-Cov) adds to the loss, as tensors; Clip-Cov's dropped
/// tokens travel in `surrogate_mask`.
pub struct CovLoss<B: Backend> {
    /// `coef·|log ρ|` per token `[B, T]` (KL-Cov's selected tokens).
    pub penalty: Option<Tensor<B, 2>>,
    /// The unclipped surrogate `−ρA` (KL-Cov).
    pub unclipped: bool,
}

impl<B: Backend> CovLoss<B> {
    /// No control.
    pub fn none() -> Self {
        Self {
            penalty: None,
            unclipped: false,
        }
    }
}

/// Computes the loss. `logps` carries the gradient; the others are treated as constants.
/// `surrogate_mask` (0/1 `[B, T]`, TRL's high-entropy mask) zeroes the clipped surrogate of the
/// tokens it excludes; the KL term and the normalisation still count every token in `mask`, as TRL does.
#[allow(clippy::too_many_arguments)]
pub fn policy_loss<B: Backend>(
    logps: Tensor<B, 2>,
    old: Tensor<B, 2>,
    reference: Option<Tensor<B, 2>>,
    mask: Tensor<B, 2>,
    surrogate_mask: Option<Tensor<B, 2>>,
    adv: Tensor<B, 1>,
    c: &PolicyLossConfig,
    norm: &Normalizer,
    cov: CovLoss<B>,
) -> PolicyLoss<B> {
    let adv = adv.unsqueeze_dim::<2>(1); // [B, 1]
    let log_ratio = logps.clone() - old;
    let ratio = log_ratio.clone().exp(); // [B, T]
    let clipped = ratio.clone().clamp(1.0 - c.epsilon, 1.0 + c.epsilon_high);
    // −min(ρA, clip(ρ)A): built from an elementwise min so the gradient takes the right branch.
    let unclipped_term = ratio.clone() * adv.clone();
    let surrogate = if cov.unclipped {
        unclipped_term
    } else {
        let clipped_term = clipped * adv.clone();
        let take_clipped = clipped_term.clone().lower(unclipped_term.clone());
        unclipped_term.mask_where(take_clipped, clipped_term)
    };
    let mut per_token = match surrogate_mask {
        Some(keep) => surrogate.neg() * keep,
        None => surrogate.neg(),
    };
    if let Some(p) = cov.penalty {
        per_token = per_token + log_ratio.abs() * p;
    }
    let mut kl_sum = 0.0;
    if c.beta != 0.0 {
        let r = reference.expect("beta > 0 needs reference log-probs");
        let d = r - logps.clone();
        let kl = d.clone().exp() - d - 1.0; // k3 estimator, ≥ 0
        kl_sum = (kl.clone().detach() * mask.clone()).sum().into_scalar().elem::<f64>();
        per_token = per_token + kl * c.beta;
    }
    let masked = per_token * mask.clone();
    let loss = match c.loss_type {
        LossType::Grpo => {
            let lens = mask.clone().sum_dim(1).clamp_min(1.0); // [B, 1]
            (masked.sum_dim(1) / lens).sum().reshape([1]) / norm.total_sequences as f64
        }
        LossType::Bnpo => {
            let tokens = mask.clone().sum().clamp_min(1.0);
            masked.sum() / tokens / norm.micro_batches as f64
        }
        LossType::DrGrpo => masked.sum() / (norm.total_sequences * c.max_completion_length) as f64,
        LossType::Dapo => masked.sum() / norm.total_tokens.max(1) as f64,
    };
    // Clip statistics (no gradient).
    let ratio = ratio.detach();
    let low = ratio.clone().lower_elem(1.0 - c.epsilon).float() * adv.clone().lower_elem(0.0).float();
    let high = ratio.greater_elem(1.0 + c.epsilon_high).float() * adv.greater_elem(0.0).float();
    let clipped_low = (low * mask.clone()).sum().into_scalar().elem::<f64>();
    let clipped_high = (high * mask).sum().into_scalar().elem::<f64>();
    PolicyLoss {
        loss,
        kl_sum,
        clipped_low,
        clipped_high,
    }
}
