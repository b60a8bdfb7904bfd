//! Rollouts: sampling with per-token statistics, batched and KV-cached.

pub mod completion;
pub mod decoder;
pub mod device_step;
pub mod engine;
pub mod policy;
pub mod reference;
pub mod sampler;
mod stepper;

pub use completion::{Completion, FinishReason, ForkPoint, RolloutConfig};
pub use decoder::{Control, DecodeCost, DecodeHooks, Decoded, StepView, decode};
pub use engine::{LogitsProcessor, generate, generate_with};
pub use policy::{DecodeLayers, DecodePolicy, SamplerPlace, Shapes};
pub use sampler::SamplingParams;
