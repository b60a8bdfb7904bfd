//! `[sia]`: the Stepwise Informativeness analysis (`entrl analyze sia`; SPEC §5, METHODS-2 §3).
//! Its estimation protocol is unpublished; every choice below is an assumption and a key.

use entrl_rewards::sia::StepSplit;
use serde::{Deserialize, Serialize};

use super::source::SourceSpec;

/// The `[sia]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiaSection {
    /// Problems (default: `data.eval`, else `data.train`, drawn with `data.eval_seed`).
    #[serde(default)]
    pub source: Option<SourceSpec>,
    /// How many.
    #[serde(default = "d_problems")]
    pub problems: usize,
    /// Where steps end: `newlines` or `sentences`.
    #[serde(default = "d_split")]
    pub split: StepSplit,
    /// The chain's own answer line starts here; the reasoning is what comes before its last
    /// occurrence (the whole chain when absent).
    #[serde(default = "d_marker")]
    pub answer_marker: String,
    /// Appended after each prefix to ask for the answer.
    #[serde(default = "d_cue")]
    pub answer_cue: String,
    /// Text before the gold answer's tokens in estimator (a) (after the cue).
    #[serde(default = "d_answer_prefix")]
    pub answer_prefix: String,
    /// Chains: temperature (0 = greedy) and longest chain.
    #[serde(default)]
    pub chain_temperature: f64,
    /// Longest chain (default `eval.max_completion_length`, else `rl.max_completion_length`).
    #[serde(default)]
    pub chain_max_tokens: Option<usize>,
    /// Estimator (b): sampled answers per prefix (M; 0 = off), their temperature and length.
    #[serde(default = "d_samples")]
    pub samples: usize,
    /// Temperature of the sampled answers.
    #[serde(default = "d_one")]
    pub sample_temperature: f64,
    /// Longest sampled answer.
    #[serde(default = "d_sample_tokens")]
    pub sample_max_tokens: usize,
    /// Cut a chain before the first step that states its own final answer or the gold answer (a
    /// trace that copies the answer would show a collapse that is not informativeness).
    #[serde(default = "d_true")]
    pub exclude_answer_steps: bool,
    /// At most this many steps per chain (the first ones).
    #[serde(default = "d_max_steps")]
    pub max_steps: usize,
    /// A step raising h by more than this is a monotonicity violation.
    #[serde(default)]
    pub violation_tol: f64,
    /// |A| for Fano's bound with estimator (b) (numeric answers have no natural alphabet:
    /// an assumption).
    #[serde(default = "d_alphabet")]
    pub fano_alphabet: usize,
    /// Seed of the chains and sampled answers.
    #[serde(default)]
    pub seed: u64,
}

fn d_problems() -> usize {
    100
}
fn d_split() -> StepSplit {
    StepSplit::Newlines
}
fn d_marker() -> String {
    "####".into()
}
fn d_cue() -> String {
    "\n####".into()
}
fn d_answer_prefix() -> String {
    " ".into()
}
fn d_samples() -> usize {
    10
}
fn d_one() -> f64 {
    1.0
}
fn d_sample_tokens() -> usize {
    16
}
fn d_true() -> bool {
    true
}
fn d_max_steps() -> usize {
    16
}
fn d_alphabet() -> usize {
    100
}

impl SiaSection {
    /// Range checks naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.problems == 0 {
            return Err("key 'sia.problems' must be >= 1".into());
        }
        if self.max_steps == 0 {
            return Err("key 'sia.max_steps' must be >= 1".into());
        }
        if self.samples == 1 {
            return Err("key 'sia.samples' must be 0 (off) or >= 2".into());
        }
        if !(self.sample_temperature > 0.0 && self.sample_temperature <= 10.0) {
            return Err("key 'sia.sample_temperature' must be in (0, 10]".into());
        }
        if !(0.0..=10.0).contains(&self.chain_temperature) {
            return Err("key 'sia.chain_temperature' must be in [0, 10]".into());
        }
        if self.answer_marker.is_empty() {
            return Err("key 'sia.answer_marker' must not be empty".into());
        }
        if let Some(SourceSpec::Synthetic(t)) = &self.source {
            t.validate().map_err(|m| format!("key 'sia.source': {m}"))?;
        }
        Ok(())
    }
}
