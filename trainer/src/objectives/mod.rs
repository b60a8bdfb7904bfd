//! Training objectives. Each has a plain scalar reference (`reference`) that the tensor version is
//! tested against, and golden tests against TRL (`tests/fixtures/grpo_golden_trl.json`).

pub mod advantages;
pub mod clip_cov;
pub mod cov;
pub mod covariance;
pub mod em_ft;
pub mod em_rl;
pub mod entropy;
pub mod kl_cov;
pub mod objective;
pub mod policy_gradient;
pub mod policy_loss;
pub mod reference;
pub mod sft;

use serde::{Deserialize, Serialize};

pub use objective::{AdvantageSource, EntropyLoss, Objective, ObjectiveTraits, RewardSource};

/// How token losses are aggregated into the batch loss (TRL's `loss_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over each sequence's tokens, then mean over sequences (DeepSeekMath).
    Grpo,
    /// Sum over tokens / tokens of the micro-batch (TRL's bnpo; equals dapo without accumulation).
    Bnpo,
    /// Sum over tokens / (sequences × max_completion_length) (Dr. GRPO).
    DrGrpo,
    /// Sum over tokens / tokens of the whole accumulated batch (DAPO token-level).
    Dapo,
}

/// Reward scaling of group-normalised advantages (TRL's `scale_rewards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// Divide by the group's std (unbiased) + eps.
    Group,
    /// Divide by the whole batch's std (unbiased) + eps.
    Batch,
    /// Do not divide (Dr. GRPO).
    None,
}

/// Which baseline the advantage uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvantageEstimator {
    /// `(r − mean_group) / scale` (GRPO).
    Grpo,
    /// `r − mean of the other G−1 rewards` (RLOO).
    Rloo,
}

/// Clipped-surrogate settings shared by the GRPO family, RLOO and EM-RL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyLossConfig {
    /// Aggregation.
    pub loss_type: LossType,
    /// Lower clip ε (ratio ≥ 1 − ε).
    pub epsilon: f64,
    /// Upper clip ε (ratio ≤ 1 + ε_high); DAPO clip-higher uses 0.28.
    pub epsilon_high: f64,
    /// KL weight β (k3 estimator against the reference); 0 disables it.
    pub beta: f64,
    /// `max_completion_length` (Dr. GRPO's constant normaliser).
    pub max_completion_length: usize,
    /// Covariance-based entropy control (Clip-Cov, KL-Cov) or none.
    pub cov_control: cov::CovControl,
}

/// Batch-wide counts that make micro-batch losses sum to the full-batch loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalizer {
    /// Sequences in the whole accumulated batch.
    pub total_sequences: usize,
    /// Unmasked tokens in the whole accumulated batch.
    pub total_tokens: usize,
    /// Number of micro-batches.
    pub micro_batches: usize,
}
