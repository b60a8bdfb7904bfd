//! Tensor-free rewards and signals for entrl: answer extraction and equivalence, format and length
//! rewards, weighted composition; entropy-trajectory signals (EDIS, mean entropy, self-certainty,
//! NLL), selection rules (voting, best-of-N, EDIS filtering and weighting) and evaluation statistics
//! (AUROC, pass@k, maj@k). No burn dependency, so it builds and tests in seconds.

pub mod confidence;
pub mod countdown;
pub mod extract;
pub mod program;
pub mod reward;
pub mod reward_set;
pub mod selection;
pub mod sentinel;
pub mod sia;
pub mod signals;
pub mod stats;
pub mod verifiers;

pub use confidence::{DeepConfParams, TraceConfidence, token_confidence};
pub use extract::{
    Extractor, answers_equal, extract_answer_tag, extract_boxed, extract_hash, extract_last_number, parse_number,
};
pub use program::{ProgramError, ProgramSpec, ScoreInput};
pub use reward::{RewardFn, overlong_penalty};
pub use reward_set::{BatchScores, RewardSet, Scored};
pub use signals::{EdisParams, Signal, SignalParams, Signals, Trajectory};
