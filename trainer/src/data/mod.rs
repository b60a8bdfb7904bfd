//! Problems for training and evaluation: seeded synthetic task generators and JSONL math datasets,
//! behind one [`ProblemSource`] with an integer cursor (so a checkpoint resumes the data exactly).

pub mod chat_template;
pub mod jsonl;
pub mod tasks;
pub mod template;

use serde::{Deserialize, Serialize};

pub use template::{PromptFormat, Template};

/// One verifiable problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// The question, without any template.
    pub question: String,
    /// Gold answer in the form the task's reward function reads.
    pub answer: String,
    /// A worked solution ending in `#### answer` (for supervised warm-up); may be empty.
    pub solution: String,
    /// Where it came from (per-source metrics), e.g. "arithmetic" or "gsm8k".
    pub data_source: String,
}

/// Anything that yields problem `i` deterministically.
pub trait ProblemSource {
    /// Problem at cursor position `i` (finite sources wrap around, reshuffled per epoch).
    fn get(&self, i: u64) -> Problem;
    /// Number of distinct problems, if finite.
    fn len(&self) -> Option<usize>;
    /// True for a finite empty source.
    fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}
