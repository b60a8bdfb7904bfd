//! The plain entry points [`generate`] / [`generate_with`] over the decode loop in
//! [`super::decoder`], and the logits-processor hook.

pub use super::completion::{Completion, FinishReason, ForkPoint, RolloutConfig};
use super::decoder::{DecodeHooks, StepView, decode};
use crate::model::Transformer;
use burn::tensor::backend::Backend;

/// A hook between the raw statistics and sampling: rewrites a copy of a row's logits (EM-INF,
/// adaptive temperature, constrained decoding). The recorded statistics stay the model's own.
pub trait LogitsProcessor {
    /// Rewrites `logits [V]` of the row that `view` shows.
    fn process(&mut self, view: &StepView, logits: &mut [f32]);
}

/// Decode hooks that only process logits.
pub struct Processing<'a>(pub &'a mut dyn LogitsProcessor);

impl DecodeHooks for Processing<'_> {
    fn processes_logits(&self) -> bool {
        true
    }
    fn process(&mut self, view: &StepView, logits: &mut [f32]) {
        self.0.process(view, logits);
    }
}

/// Generates `group_size` completions for each prompt. Output order: prompt-major, then sample.
pub fn generate<B: Backend>(model: &Transformer<B>, prompts: &[Vec<u32>], cfg: &RolloutConfig) -> Vec<Completion> {
    decode(model, prompts, cfg, &mut super::decoder::Plain).completions
}

/// [`generate`] with a logits processor.
pub fn generate_with<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    cfg: &RolloutConfig,
    proc: &mut dyn LogitsProcessor,
) -> Vec<Completion> {
    decode(model, prompts, cfg, &mut Processing(proc)).completions
}
