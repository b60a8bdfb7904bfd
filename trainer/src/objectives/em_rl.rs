//! EM-RL (METHODS §3): policy gradient with the model's own confidence as the reward — sequence level
//! `ln π(y) = Σ_t ln π(y_t|y_<t)` or token level `−Σ_t H_t`, from the rollout's raw (T = 1)
//! statistics, un-normalised sums as in the paper. No labels.

use super::objective::{AdvantageSource, EntropyLoss, ObjectiveTraits, RewardSource};
use crate::rollout::Completion;

const EM_RL: ObjectiveTraits = ObjectiveTraits {
    rewards: RewardSource::SequenceLogLikelihood,
    advantages: AdvantageSource::GroupBaseline,
    entropy_loss: EntropyLoss::Regularizer,
    needs_labels: false,
    min_group_size: 2,
    dynamic_sampling: false, // dynamic sampling judges reward-function rewards
};

/// The decisions of `entropy.objective = "em_rl_sequence"`.
pub const SEQUENCE_TRAITS: ObjectiveTraits = EM_RL;

/// The decisions of `entropy.objective = "em_rl_token"`.
pub const TOKEN_TRAITS: ObjectiveTraits = ObjectiveTraits {
    rewards: RewardSource::NegativeEntropySum,
    ..EM_RL
};

/// Sequence-level reward `Σ_t ln π(y_t|y_<t)`.
pub fn sequence_reward(c: &Completion) -> f64 {
    c.logprobs.iter().map(|&x| x as f64).sum()
}

/// Token-level reward `−Σ_t H_t`.
pub fn token_reward(c: &Completion) -> f64 {
    -c.entropies.iter().map(|&x| x as f64).sum::<f64>()
}
