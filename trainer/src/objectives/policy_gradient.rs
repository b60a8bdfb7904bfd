//! Policy gradient on reward functions (GRPO family, RLOO): group-baseline advantages from the
//! `[[rewards]]` functions, the clipped surrogate of [`super::policy_loss`], the optional entropy
//! regulariser; labels needed.

use super::objective::{AdvantageSource, EntropyLoss, ObjectiveTraits, RewardSource};

/// The decisions of `entropy.objective = "reward"`.
pub const TRAITS: ObjectiveTraits = ObjectiveTraits {
    rewards: RewardSource::RewardFunctions,
    advantages: AdvantageSource::GroupBaseline,
    entropy_loss: EntropyLoss::Regularizer,
    needs_labels: true,
    min_group_size: 2, // a group baseline needs two samples
    dynamic_sampling: true,
};
