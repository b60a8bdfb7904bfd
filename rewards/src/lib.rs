//! Tensor-free rewards for entrl: answer extraction and equivalence, format and length rewards,
//! weighted composition. No burn dependency, so it builds and tests in seconds.

pub mod countdown;
pub mod extract;
pub mod reward;

pub use extract::{Extractor, answers_equal, extract_boxed, extract_hash, extract_last_number, parse_number};
pub use reward::{RewardFn, RewardSet, Scored, overlong_penalty};
