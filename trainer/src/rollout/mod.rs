//! Rollouts: sampling with per-token statistics, batched and KV-cached.

pub mod engine;
pub mod reference;
pub mod sampler;

pub use engine::{Completion, FinishReason, LogitsProcessor, RolloutConfig, generate, generate_with};
pub use sampler::SamplingParams;
