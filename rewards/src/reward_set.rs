//! Weighted reward functions scored together: built-in functions per completion, reward programs
//! once per batch (one request to each program, which stays running between batches).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::program::{Program, ProgramAnswer, ProgramError, ScoreInput};
use crate::reward::RewardFn;

/// Several reward functions with weights; the total is `Σ wᵢ·rᵢ`.
#[derive(Debug, Clone)]
pub struct RewardSet {
    /// (function, weight)
    pub fns: Vec<(RewardFn, f64)>,
    /// The running program of each `program` entry (shared by clones), by position in `fns`.
    programs: Arc<Mutex<BTreeMap<usize, Program>>>,
}

impl PartialEq for RewardSet {
    fn eq(&self, other: &Self) -> bool {
        self.fns == other.fns
    }
}

/// Scores of one completion: each function's raw value, and the weighted total.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Raw value of each function, in order.
    pub parts: Vec<f64>,
    /// Weighted sum.
    pub total: f64,
    /// Whether the answer was correct: the first verifier's verdict (accuracy, countdown,
    /// exact_match, regex, multiple_choice, or a program's `correct`/reward > 0.5); false if none.
    pub correct: bool,
}

/// A batch's scores, and the batch metrics of reward programs (`reward/<name>/<component>` means
/// of their sub-scores and their own `reward/<name>/<metric>`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchScores {
    /// One per input, in order.
    pub scored: Vec<Scored>,
    /// Program metrics.
    pub metrics: BTreeMap<String, f64>,
}

impl RewardSet {
    /// A set of (function, weight).
    pub fn new(fns: Vec<(RewardFn, f64)>) -> Self {
        Self {
            fns,
            programs: Arc::default(),
        }
    }

    /// Whether any entry is a reward program (scoring can then fail).
    pub fn has_programs(&self) -> bool {
        self.fns.iter().any(|(f, _)| matches!(f, RewardFn::Program(_)))
    }

    /// Scores a batch: built-in functions per completion, each program once for the whole batch.
    pub fn score_batch(&self, items: &[ScoreInput]) -> Result<BatchScores, ProgramError> {
        let mut metrics = BTreeMap::new();
        // columns[i][j]: function i on item j (value, verdict)
        let mut columns: Vec<Vec<(f64, bool)>> = Vec::with_capacity(self.fns.len());
        for (i, (f, _)) in self.fns.iter().enumerate() {
            let column = match f {
                RewardFn::Program(spec) => {
                    let answer = self.run_program(i, spec, items)?;
                    program_metrics(&spec.name, &answer, &mut metrics);
                    let verdicts = answer
                        .correct
                        .unwrap_or_else(|| answer.rewards.iter().map(|&r| r > 0.5).collect());
                    answer.rewards.into_iter().zip(verdicts).collect()
                }
                _ => items
                    .iter()
                    .map(|x| {
                        let r = f.score(x.completion, x.gold, x.len);
                        (r, r > 0.5)
                    })
                    .collect(),
            };
            columns.push(column);
        }
        let scored = (0..items.len())
            .map(|j| {
                let (parts, verdicts) = columns.iter().map(|c| c[j]).unzip();
                self.combine(parts, verdicts)
            })
            .collect();
        Ok(BatchScores { scored, metrics })
    }

    fn run_program(
        &self,
        i: usize,
        spec: &crate::program::ProgramSpec,
        items: &[ScoreInput],
    ) -> Result<ProgramAnswer, ProgramError> {
        let mut programs = self.programs.lock().expect("reward programs");
        programs
            .entry(i)
            .or_insert_with(|| Program::new(spec.clone()))
            .score(items)
    }

    fn combine(&self, parts: Vec<f64>, verdicts: Vec<bool>) -> Scored {
        let total = parts.iter().zip(&self.fns).map(|(r, (_, w))| r * w).sum();
        let correct = self
            .fns
            .iter()
            .zip(&verdicts)
            .find(|((f, _), _)| f.is_verifier())
            .is_some_and(|(_, &v)| v);
        Scored { parts, total, correct }
    }
}

/// `reward/<name>/<component>` (mean over the batch) and `reward/<name>/<metric>`.
fn program_metrics(name: &str, answer: &ProgramAnswer, out: &mut BTreeMap<String, f64>) {
    for (k, v) in &answer.components {
        let xs: Vec<f64> = v.as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
        out.insert(
            format!("reward/{name}/{k}"),
            xs.iter().sum::<f64>() / xs.len().max(1) as f64,
        );
    }
    for (k, v) in &answer.metrics {
        out.insert(format!("reward/{name}/{k}"), v.as_f64().unwrap_or(f64::NAN));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Extractor;
    use serde_json::Map;

    #[test]
    fn weighted_composition() {
        let set = RewardSet::new(vec![
            (
                RewardFn::Accuracy {
                    extractor: Extractor::Hash,
                },
                1.0,
            ),
            (RewardFn::Format, 0.5),
        ]);
        let extra = Map::new();
        let score = |completion| {
            let input = ScoreInput {
                prompt: "",
                completion,
                gold: "7",
                len: 5,
                data_source: "x",
                extra: &extra,
            };
            set.score_batch(&[input]).unwrap().scored.remove(0)
        };
        let s = score("3+4=7\n#### 7");
        assert_eq!((s.parts.clone(), s.total, s.correct), (vec![1.0, 1.0], 1.5, true));
        let s = score("#### 8 and more");
        assert_eq!((s.parts.clone(), s.total, s.correct), (vec![0.0, 0.0], 0.0, false));
    }
}
