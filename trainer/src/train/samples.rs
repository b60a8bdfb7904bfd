//! Completions you can read: a few decoded completions of every RL step in
//! `RUN_DIR/samples.jsonl` (TRL's `log_completions`), next to the token-level trajectory artifacts.
//! One line per completion: step, problem and sample index, prompt and completion text, reward,
//! verdict, EDIS and mean token entropy, advantage, and whether the update used it.

use entrl_rewards::Signal;
use serde_json::{Map, Value, json};

use crate::trajectories::Record;

/// The first `n` completions of a step in sampling order (the first prompt's group first, so a
/// group's spread of rewards is visible), as `samples.jsonl` lines.
pub fn sample_lines(
    step: u64,
    records: &[Record],
    n: usize,
    prompt_text: impl Fn(u64) -> String,
    completion_text: impl Fn(&[u32]) -> String,
) -> Vec<Map<String, Value>> {
    records
        .iter()
        .take(n)
        .map(|r| {
            let v = json!({
                "step": step,
                "prompt_index": r.prompt_index,
                "sample_index": r.sample_index,
                "prompt": prompt_text(r.prompt_index),
                "completion": completion_text(&r.tokens),
                "reward": r.reward,
                "correct": r.correct,
                "edis": r.signals.get(Signal::Edis),
                "mean_entropy": r.signals.get(Signal::MeanEntropy),
                "advantage": r.advantage,
                "kept": r.kept,
                "truncated": r.truncated,
            });
            match v {
                Value::Object(m) => m,
                _ => unreachable!("json! of an object"),
            }
        })
        .collect()
}
