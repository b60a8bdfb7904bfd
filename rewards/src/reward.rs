//! Reward functions over (completion text, gold answer) and their weighted composition.

use serde::{Deserialize, Serialize};

use crate::extract::{Extractor, answers_equal};

/// One reward function, configured by value (so a TOML `[[rewards]]` table can name it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RewardFn {
    /// 1 if the extracted answer equals the gold answer, else 0.
    Accuracy {
        /// Which extractor reads the completion.
        extractor: Extractor,
    },
    /// 1 if the completion ends with a parseable `#### answer` line (after trimming), else 0.
    Format,
    /// Countdown: 1 if the text after the last `####` is an equation over the gold's numbers that
    /// hits its target (gold `target:n1,n2,...`), else 0.
    Countdown,
    /// DAPO soft overlong penalty on completion length L (tokens): 0 up to `max_len − cache`,
    /// then linear to −1 at `max_len`, −1 beyond.
    OverlongPenalty {
        /// L_max.
        max_len: usize,
        /// L_cache (width of the linear ramp).
        cache: usize,
    },
}

impl RewardFn {
    /// Name used in metrics (`reward/<name>`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Accuracy { .. } => "accuracy",
            Self::Format => "format",
            Self::Countdown => "countdown",
            Self::OverlongPenalty { .. } => "overlong",
        }
    }

    /// Score of one completion. `len` is its length in tokens.
    pub fn score(&self, completion: &str, gold: &str, len: usize) -> f64 {
        match self {
            Self::Accuracy { extractor } => match extractor.extract(completion) {
                Some(pred) if answers_equal(&pred, gold) => 1.0,
                _ => 0.0,
            },
            Self::Format => {
                let t = completion.trim_end();
                let last = t.lines().last().unwrap_or("");
                match last.trim().strip_prefix("####") {
                    Some(a) if crate::extract::parse_number(a).is_some() => 1.0,
                    _ => 0.0,
                }
            }
            Self::Countdown => {
                let ok = crate::extract::extract_hash(completion)
                    .zip(crate::countdown::parse_gold(gold))
                    .is_some_and(|(e, (t, ns))| crate::countdown::check(&e, t, &ns));
                f64::from(u8::from(ok))
            }
            Self::OverlongPenalty { max_len, cache } => overlong_penalty(len, *max_len, *cache),
        }
    }
}

/// DAPO's soft overlong punishment (METHODS §6).
pub fn overlong_penalty(len: usize, max_len: usize, cache: usize) -> f64 {
    let start = max_len.saturating_sub(cache);
    if len <= start {
        0.0
    } else if len <= max_len {
        (start as f64 - len as f64) / cache.max(1) as f64
    } else {
        -1.0
    }
}

/// Several reward functions with weights; the total is `Σ wᵢ·rᵢ`.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardSet {
    /// (function, weight)
    pub fns: Vec<(RewardFn, f64)>,
}

/// Scores of one completion: each function's raw value, and the weighted total.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Raw value of each function, in order.
    pub parts: Vec<f64>,
    /// Weighted sum.
    pub total: f64,
    /// Whether the answer was correct (the first `Accuracy`/`Countdown` verdict; false if none).
    pub correct: bool,
}

impl RewardSet {
    /// Scores one completion.
    pub fn score(&self, completion: &str, gold: &str, len: usize) -> Scored {
        let parts: Vec<f64> = self.fns.iter().map(|(f, _)| f.score(completion, gold, len)).collect();
        let total = parts.iter().zip(&self.fns).map(|(r, (_, w))| r * w).sum();
        let correct = self
            .fns
            .iter()
            .zip(&parts)
            .find(|((f, _), _)| matches!(f, RewardFn::Accuracy { .. } | RewardFn::Countdown))
            .is_some_and(|(_, &r)| r > 0.5);
        Scored { parts, total, correct }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_matches_dapo_definition() {
        // L_max = 20480, L_cache = 4096 (DAPO): ramp from 16384 to 20480
        assert_eq!(overlong_penalty(16384, 20480, 4096), 0.0);
        assert_eq!(overlong_penalty(18432, 20480, 4096), -0.5);
        assert_eq!(overlong_penalty(20480, 20480, 4096), -1.0);
        assert_eq!(overlong_penalty(30000, 20480, 4096), -1.0);
    }

    #[test]
    fn weighted_composition() {
        let set = RewardSet {
            fns: vec![
                (
                    RewardFn::Accuracy {
                        extractor: Extractor::Hash,
                    },
                    1.0,
                ),
                (RewardFn::Format, 0.5),
            ],
        };
        let s = set.score("3+4=7\n#### 7", "7", 5);
        assert_eq!((s.parts.clone(), s.total, s.correct), (vec![1.0, 1.0], 1.5, true));
        let s = set.score("#### 8 and more", "7", 5);
        assert_eq!((s.parts.clone(), s.total, s.correct), (vec![0.0, 0.0], 0.0, false));
    }
}
