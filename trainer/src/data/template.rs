//! Prompt templates: how a question becomes the prompt text the model continues.

use serde::{Deserialize, Serialize};

/// Prompt format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// `Q: {question}\nA:` — for models trained from scratch on the synthetic tasks.
    Plain,
    /// ChatML single user turn, for instruct models (SmolLM2, Qwen): asks for a `####` answer line.
    Chatml,
}

impl Template {
    /// Prompt text for `question`.
    pub fn render(self, question: &str) -> String {
        match self {
            Self::Plain => format!("Q: {question}\nA:"),
            Self::Chatml => format!(
                "<|im_start|>user\n{question}\nSolve step by step, then give the final answer on its own line as '#### <number>'.<|im_end|>\n<|im_start|>assistant\n"
            ),
        }
    }

    /// The text a supervised target appends after the prompt (solution plus end marker).
    pub fn target(self, solution: &str) -> String {
        match self {
            Self::Plain => format!(" {solution}<eos>"),
            Self::Chatml => format!("{solution}<|im_end|>"),
        }
    }
}
