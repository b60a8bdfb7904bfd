//! Problems for training and evaluation: seeded synthetic task generators and JSONL math datasets,
//! behind one [`ProblemSource`] with an integer cursor (so a checkpoint resumes the data exactly).

pub mod chat_template;
pub mod columns;
pub mod jsonl;
pub mod tasks;
pub mod template;

use serde::{Deserialize, Serialize};

pub use chat_template::Message;
pub use template::{PromptFormat, Template};

/// One verifiable problem.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Problem {
    /// The question, without any template.
    pub question: String,
    /// Gold answer in the form the task's reward function reads.
    pub answer: String,
    /// A worked solution ending in `#### answer` (for supervised warm-up); may be empty.
    pub solution: String,
    /// Where it came from (per-source metrics), e.g. "arithmetic" or "gsm8k".
    pub data_source: String,
    /// The prompt as a chat conversation (TRL's conversational `prompt`, verl's `prompt`), used
    /// as is by chat templates; `question` then holds its last user turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    /// The dataset row's other columns, passed to reward programs.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
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
