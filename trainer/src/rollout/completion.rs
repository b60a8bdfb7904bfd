//! What a rollout produces ([`Completion`]) and asks for ([`RolloutConfig`]).

use serde::{Deserialize, Serialize};

use super::sampler::{SamplingParams, TokenStep};

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token was generated (it is included in `tokens`).
    Eos,
    /// `max_new_tokens` was reached (truncated).
    Length,
    /// A decoder's control hook ended it (e.g. a confidence early stop).
    Stopped,
}

/// Where a row forked: it became child `child` of the tokens offered at generated position `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForkPoint {
    /// Generated position of the fork (the child's token sits there).
    pub pos: usize,
    /// Which of the offered tokens this completion took (its index in the fork's token list).
    pub child: u32,
    /// This child's share of the offered tokens' probability, `p(tok) / Σ p(offered)`, under the
    /// raw (stats) distribution: the factor an Entropy-Tree leaf weight multiplies in.
    pub share: f32,
}

/// One generated completion with per-token statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Which prompt it answers.
    pub prompt_index: usize,
    /// Which sample of that prompt's group.
    pub sample_index: usize,
    /// Generated ids (EOS included when it ended on one).
    pub tokens: Vec<u32>,
    /// Log-prob of each generated token.
    pub logprobs: Vec<f32>,
    /// Full-vocabulary entropy (nats) at each generated position.
    pub entropies: Vec<f32>,
    /// Self-certainty `KL(U‖p_t)` at each generated position.
    pub self_certainty: Vec<f32>,
    /// Top log-probs at each position, most likely first.
    pub top_logprobs: Vec<Vec<(u32, f32)>>,
    /// How it ended.
    pub finish_reason: FinishReason,
    /// The forks on its path, in order (empty for a plain sample); with prompt and sample index
    /// they key the completion and its RNG stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forks: Vec<ForkPoint>,
}

impl Completion {
    /// Nothing generated yet.
    pub fn empty(prompt_index: usize, sample_index: usize) -> Self {
        Self {
            prompt_index,
            sample_index,
            tokens: vec![],
            logprobs: vec![],
            entropies: vec![],
            self_certainty: vec![],
            top_logprobs: vec![],
            finish_reason: FinishReason::Length,
            forks: vec![],
        }
    }

    /// Appends one generated token with its statistics.
    pub fn push(&mut self, s: TokenStep) {
        self.tokens.push(s.token);
        self.logprobs.push(s.logprob);
        self.entropies.push(s.entropy);
        self.self_certainty.push(s.self_certainty);
        self.top_logprobs.push(s.top);
    }
}

/// Everything a rollout needs besides the model and prompts.
#[derive(Debug, Clone)]
pub struct RolloutConfig {
    /// Samples per prompt (G).
    pub group_size: usize,
    /// Longest completion.
    pub max_new_tokens: usize,
    /// Sampling and statistics options.
    pub sampling: SamplingParams,
    /// Ids that end a completion.
    pub eos_ids: Vec<u32>,
    /// Seed; completion (p, g) uses the RNG stream (seed, first_prompt_index + p, g).
    pub seed: u64,
    /// Stream index of the first prompt, so a slice of a larger prompt set samples exactly as it
    /// would inside the whole set.
    pub first_prompt_index: usize,
    /// Shapes and sampler placement of the decode loop (the CPU's by default).
    pub policy: super::policy::DecodePolicy,
}
