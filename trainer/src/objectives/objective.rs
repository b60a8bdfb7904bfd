//! What an RL step optimises (`entropy.objective`), as one enum matched exhaustively: each arm's
//! decisions live in its own file (`policy_gradient.rs`, `em_ft.rs`, `em_rl.rs`) as an
//! [`ObjectiveTraits`] value, and every decision is itself an enum, so a new objective is one new
//! file plus one arm of [`Objective::traits`], and the compiler points at every `match` on a new
//! kind of decision.

use serde::{Deserialize, Serialize};

use super::{em_ft, em_rl, policy_gradient};

/// The objective of the RL phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Policy gradient (`rl.loss_type`, `rl.advantage_estimator`) on the `[[rewards]]` functions.
    #[default]
    Reward,
    /// EM-FT: minimise the token-mean entropy of the policy's own samples by direct
    /// differentiation through the full-vocabulary softmax (no reward, no labels).
    EmFt,
    /// EM-RL, sequence level: reward = `ln π(y) = Σ_t ln π(y_t|y_<t)` of the rollout (no labels).
    EmRlSequence,
    /// EM-RL, token level: reward = `−Σ_t H_t` of the rollout (no labels).
    EmRlToken,
}

/// Where a completion's training reward comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardSource {
    /// The `[[rewards]]` functions (verifiers, format, ...).
    RewardFunctions,
    /// `Σ_t ln π(y_t|y_<t)` of the rollout's own raw (T = 1) statistics.
    SequenceLogLikelihood,
    /// `−Σ_t H_t` of the rollout's own raw statistics.
    NegativeEntropySum,
}

/// How advantages are made from the rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvantageSource {
    /// `rl.advantage_estimator` over each prompt's group (GRPO or RLOO baseline).
    GroupBaseline,
    /// All zero: the surrogate carries no signal (only its optional KL term remains).
    Zero,
}

/// The entropy term of the token loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntropyLoss {
    /// `entropy.regularizer` with `entropy.coef` (none, bonus or penalty).
    Regularizer,
    /// The token-mean entropy itself is minimised, with weight 1.
    Minimize,
}

/// Every decision the training loop asks of an objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectiveTraits {
    /// Where rewards come from.
    pub rewards: RewardSource,
    /// How advantages are made.
    pub advantages: AdvantageSource,
    /// Which entropy term the token loss carries.
    pub entropy_loss: EntropyLoss,
    /// Whether training needs labels (else the verifier only reports accuracy).
    pub needs_labels: bool,
    /// The smallest `rl.num_generations`.
    pub min_group_size: usize,
    /// Whether DAPO dynamic sampling (which judges reward-function rewards) applies.
    pub dynamic_sampling: bool,
}

impl Objective {
    /// This objective's decisions.
    pub fn traits(self) -> ObjectiveTraits {
        match self {
            Self::Reward => policy_gradient::TRAITS,
            Self::EmFt => em_ft::TRAITS,
            Self::EmRlSequence => em_rl::SEQUENCE_TRAITS,
            Self::EmRlToken => em_rl::TOKEN_TRAITS,
        }
    }
}
