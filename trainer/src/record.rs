//! The judged-completion record: one completion with its per-token values, its top-k log-probs,
//! its reward and verdict and every signal. Training steps, evaluations, reports and trajectory
//! artifacts all read this one type.

use entrl_rewards::{SignalParams, Signals, Trajectory, token_confidence};

use crate::rollout::{Completion, FinishReason};

/// One completion as judged and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Problem index in its source (training cursor position or held-out index).
    pub prompt_index: u64,
    /// Sample within the prompt's group.
    pub sample_index: u64,
    /// Generated ids.
    pub tokens: Vec<u32>,
    /// Per-token entropy (nats).
    pub entropies: Vec<f32>,
    /// Per-token log-prob of the sampled token.
    pub logprobs: Vec<f32>,
    /// Per-token self-certainty.
    pub self_certainty: Vec<f32>,
    /// Per-token DeepConf confidence (empty when no top-k log-probs were recorded).
    pub confidence: Vec<f32>,
    /// Per-token top-k (id, log-prob), most likely first (empty when not recorded).
    pub top_logprobs: Vec<Vec<(u32, f32)>>,
    /// Total reward.
    pub reward: f64,
    /// Verifier verdict.
    pub correct: bool,
    /// Used in the update.
    pub kept: bool,
    /// Ended by the length limit.
    pub truncated: bool,
    /// Advantage used in the loss (0 when not used).
    pub advantage: f64,
    /// EDIS advantage weight (1 when none).
    pub weight: f64,
    /// Signals in [`entrl_rewards::Signal::ALL`] order.
    pub signals: Signals,
}

impl Record {
    /// A record of `c` with its signals computed under `params`.
    pub fn new(c: &Completion, prompt_index: u64, reward: f64, correct: bool, params: &SignalParams) -> Self {
        let confidence = confidences(c);
        let signals = Signals::of(&trajectory(c, &confidence), params);
        Self {
            prompt_index,
            sample_index: c.sample_index as u64,
            tokens: c.tokens.clone(),
            entropies: c.entropies.clone(),
            logprobs: c.logprobs.clone(),
            self_certainty: c.self_certainty.clone(),
            top_logprobs: c.top_logprobs.clone(),
            confidence,
            reward,
            correct,
            kept: false,
            truncated: c.finish_reason == FinishReason::Length,
            advantage: 0.0,
            weight: 1.0,
            signals,
        }
    }

    /// Entropy Sentinel's 17 features of this completion (`None` when it is empty or was recorded
    /// without top-k log-probs).
    pub fn sentinel_features(&self) -> Option<[f64; 17]> {
        entrl_rewards::sentinel::response_features(&self.tokens, &self.logprobs, &self.top_logprobs)
    }

    /// The record's per-token values as a signal input.
    pub fn trajectory(&self) -> Trajectory<'_> {
        Trajectory {
            entropies: &self.entropies,
            logprobs: &self.logprobs,
            self_certainty: &self.self_certainty,
            confidence: &self.confidence,
        }
    }
}

/// DeepConf token confidences of `c` (empty when it carries no top-k log-probs).
pub fn confidences(c: &Completion) -> Vec<f32> {
    if c.top_logprobs.iter().all(Vec::is_empty) {
        return vec![];
    }
    c.top_logprobs
        .iter()
        .map(|t| token_confidence(t.iter().map(|e| e.1)))
        .collect()
}

/// The per-token values of a completion (with its confidences) as a signal input.
pub fn trajectory<'a>(c: &'a Completion, confidence: &'a [f32]) -> Trajectory<'a> {
    Trajectory {
        entropies: &c.entropies,
        logprobs: &c.logprobs,
        self_certainty: &c.self_certainty,
        confidence,
    }
}
