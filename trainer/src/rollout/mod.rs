//! Rollouts: sampling with per-token statistics, batched and KV-cached.

pub mod decoder;
pub mod engine;
pub mod reference;
pub mod sampler;

pub use decoder::{Control, DecodeCost, DecodeHooks, Decoded, StepView, decode};
pub use engine::{Completion, FinishReason, ForkPoint, LogitsProcessor, RolloutConfig, generate, generate_with};
pub use sampler::SamplingParams;
