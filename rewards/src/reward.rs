//! Reward functions over (completion text, gold answer) and their weighted composition.

use serde::{Deserialize, Serialize};

use crate::extract::{Extractor, answers_equal};
use crate::verifiers;

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
    /// 1 if the answer equals the gold after SQuAD-style normalisation (case, punctuation,
    /// articles, whitespace), else 0. The answer is what `extractor` reads, or the whole
    /// completion when no extractor is set.
    ExactMatch {
        /// Which extractor reads the completion (unset: the whole completion).
        #[serde(default)]
        extractor: Option<Extractor>,
        /// Keep the case when comparing.
        #[serde(default)]
        case_sensitive: bool,
    },
    /// 1 if `pattern` matches the completion (or what `extractor` reads), else 0; `{answer}` in the
    /// pattern stands for the gold answer, matched literally. Rust `regex` syntax.
    Regex {
        /// The pattern.
        pattern: String,
        /// Which extractor reads the completion (unset: the whole completion).
        #[serde(default)]
        extractor: Option<Extractor>,
    },
    /// Multiple choice (ARC-style): 1 if the letter the completion chooses (`####` line, `\boxed{}`,
    /// `<answer>`, "the answer is X", a lone letter) is the gold letter, else 0.
    MultipleChoice {
        /// The option letters (default "ABCDE").
        #[serde(default = "default_letters")]
        letters: String,
    },
    /// The user's own program, run as a subprocess speaking JSON lines ([`crate::program`]).
    Program(crate::program::ProgramSpec),
    /// DAPO soft overlong penalty on completion length L (tokens): 0 up to `max_len − cache`,
    /// then linear to −1 at `max_len`, −1 beyond.
    OverlongPenalty {
        /// L_max.
        max_len: usize,
        /// L_cache (width of the linear ramp).
        cache: usize,
    },
}

fn default_letters() -> String {
    verifiers::DEFAULT_LETTERS.into()
}

impl RewardFn {
    /// Checks the parameters a config can get wrong (a pattern that does not compile, no letters).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Regex { pattern, .. } => {
                verifiers::check_pattern(pattern).map_err(|e| format!("pattern {pattern:?} does not compile: {e}"))
            }
            Self::MultipleChoice { letters }
                if letters.is_empty() || !letters.chars().all(|c| c.is_ascii_uppercase()) =>
            {
                Err(format!(
                    "letters {letters:?} must be upper-case ASCII letters, e.g. \"ABCDE\""
                ))
            }
            Self::Program(spec) => spec.validate(),
            _ => Ok(()),
        }
    }

    /// Whether the function judges correctness (its value > 0.5 means a correct answer).
    pub fn is_verifier(&self) -> bool {
        !matches!(self, Self::Format | Self::OverlongPenalty { .. })
    }

    /// Name used in metrics (`reward/<name>`).
    pub fn name(&self) -> &str {
        match self {
            Self::Accuracy { .. } => "accuracy",
            Self::Format => "format",
            Self::Countdown => "countdown",
            Self::ExactMatch { .. } => "exact_match",
            Self::Regex { .. } => "regex",
            Self::MultipleChoice { .. } => "multiple_choice",
            Self::Program(spec) => &spec.name,
            Self::OverlongPenalty { .. } => "overlong",
        }
    }

    /// Score of one completion. `len` is its length in tokens. A program is scored by
    /// [`crate::RewardSet::score_batch`], in batches; here it panics.
    pub fn score(&self, completion: &str, gold: &str, len: usize) -> f64 {
        match self {
            Self::Program(spec) => panic!("{} is scored in batches by RewardSet::score_batch", spec.name),
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
            Self::ExactMatch {
                extractor,
                case_sensitive,
            } => {
                let ok = answer_span(*extractor, completion)
                    .is_some_and(|pred| verifiers::exact_match(&pred, gold, *case_sensitive));
                f64::from(u8::from(ok))
            }
            Self::Regex { pattern, extractor } => {
                let ok = answer_span(*extractor, completion)
                    .is_some_and(|text| verifiers::regex_match(pattern, gold, &text));
                f64::from(u8::from(ok))
            }
            Self::MultipleChoice { letters } => {
                let ok = verifiers::gold_choice(gold, letters)
                    .is_some_and(|g| verifiers::extract_choice(completion, letters) == Some(g));
                f64::from(u8::from(ok))
            }
            Self::OverlongPenalty { max_len, cache } => overlong_penalty(len, *max_len, *cache),
        }
    }
}

/// What a verifier reads: the extracted answer, or the whole (trimmed) completion.
fn answer_span(extractor: Option<Extractor>, completion: &str) -> Option<String> {
    match extractor {
        Some(e) => e.extract(completion),
        None => Some(completion.trim().to_string()),
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
}
