//! EM-FT (METHODS §3): minimise the token-mean entropy of the policy's own samples by differentiating
//! through the full-vocabulary softmax. No reward and no labels: advantages are 0 (the surrogate
//! keeps only its optional KL), the reward functions only report; one sample per prompt suffices.

use super::objective::{AdvantageSource, EntropyLoss, ObjectiveTraits, RewardSource};

/// The decisions of `entropy.objective = "em_ft"`.
pub const TRAITS: ObjectiveTraits = ObjectiveTraits {
    rewards: RewardSource::RewardFunctions, // reported, not trained on (advantages are 0)
    advantages: AdvantageSource::Zero,
    entropy_loss: EntropyLoss::Minimize,
    needs_labels: false,
    min_group_size: 1, // METHODS §3: N = 1
    dynamic_sampling: false,
};
