//! The `[entropy]` section: every entropy term and entropy-dynamics hook of a run (METHODS §1, §3).
//! Values the papers leave open are keys here, with docs/METHODS.md's assumed defaults.

use entrl_rewards::{DeepConfParams, EdisParams, SignalParams};
use serde::{Deserialize, Serialize};

use crate::objectives::EntropyLoss;
pub use crate::objectives::Objective;

/// Sign of the entropy regulariser added to the policy loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Regularizer {
    /// No entropy term.
    #[default]
    None,
    /// `loss −= coef·H̄`: rewards entropy (verl's `entropy_coeff`).
    Bonus,
    /// `loss += coef·H̄`: penalises entropy (entropy minimisation as a regulariser).
    Penalty,
}

/// EDIS sequence filtering inside GRPO (METHODS §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdisFilter {
    /// Switch.
    pub enabled: bool,
    /// Sample `ceil(oversample·G)` rollouts per prompt and keep G (paper: m = 1.25).
    pub oversample: f64,
}

impl Default for EdisFilter {
    fn default() -> Self {
        Self {
            enabled: false,
            oversample: 1.25,
        }
    }
}

/// EDIS sequence weighting of GRPO advantages (METHODS §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdisWeight {
    /// Switch.
    pub enabled: bool,
    /// Softmax temperature α (paper: 1.8; lower puts more weight on the extremes).
    pub alpha: f64,
    /// ε added to the batch std of `ln(EDIS + 1)` (ASSUMPTION: 1e-8).
    pub eps: f64,
}

impl Default for EdisWeight {
    fn default() -> Self {
        Self {
            enabled: false,
            alpha: 1.8,
            eps: 1e-8,
        }
    }
}

/// The `[entropy]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntropySection {
    /// What RL optimises: `reward` (default), `em_ft`, `em_rl_sequence`, `em_rl_token`.
    pub objective: Objective,
    /// Entropy regulariser on the policy loss: `none`, `bonus` or `penalty`. The entropy is the
    /// token mean over the loss tokens of the scoring pass (at `rl.temperature`).
    pub regularizer: Regularizer,
    /// Its coefficient (≥ 0; the sign comes from `regularizer`).
    pub coef: f64,
    /// Keep only the tokens whose entropy is in the top ρ quantile of their micro-batch in the
    /// policy loss (TRL's `top_entropy_quantile`; 1.0 = all tokens).
    pub top_entropy_quantile: f64,
    /// EDIS window and thresholds; used for every EDIS value of the run (metrics, filter, weights).
    pub edis: EdisParams,
    /// DeepConf window and tail (0 = ⌈T/8⌉) and bottom-group share.
    pub deepconf: DeepConfParams,
    /// Top-k log-probs recorded for every generated token of training and evaluation rollouts
    /// (in the trajectory artifacts; DeepConf reads them). 0 saves space (the DeepConf signals are
    /// then 0).
    pub top_logprobs: usize,
    /// Covariance-based entropy control of the policy loss: `{ kind = "none" }` (default),
    /// `{ kind = "clip_cov", ratio, lb, ub }` or `{ kind = "kl_cov", ratio, coef }` (verl's).
    pub cov_control: crate::objectives::cov::CovControl,
    /// TRL's adaptive entropy coefficient `{ target, delta, min, max }` (needs
    /// `regularizer = "bonus"`; `coef` is its start value); unset = a fixed coefficient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<crate::objectives::entropy::AdaptiveEntropy>,
    /// EDIS sequence filtering.
    pub filter: EdisFilter,
    /// EDIS advantage weighting.
    pub weight: EdisWeight,
    /// Write every completion's entropy trajectory with its reward and signals to
    /// `RUN_DIR/trajectories/` (training steps and evaluations).
    pub trajectories: bool,
}

impl Default for EntropySection {
    fn default() -> Self {
        Self {
            objective: Objective::Reward,
            regularizer: Regularizer::None,
            coef: 0.0,
            top_entropy_quantile: 1.0,
            edis: EdisParams::default(),
            deepconf: DeepConfParams::default(),
            top_logprobs: 20,
            cov_control: Default::default(),
            adaptive: None,
            filter: EdisFilter::default(),
            weight: EdisWeight::default(),
            trajectories: true,
        }
    }
}

impl EntropySection {
    /// Rollouts sampled per prompt for a group of `g` (more than `g` when EDIS filtering is on).
    pub fn sampled_per_prompt(&self, g: usize) -> usize {
        if self.filter.enabled {
            ((g as f64 * self.filter.oversample).ceil() as usize).max(g)
        } else {
            g
        }
    }

    /// The parameters every signal of the run is computed with.
    pub fn signal_params(&self) -> SignalParams {
        SignalParams {
            edis: self.edis,
            deepconf: self.deepconf,
        }
    }

    /// The signed regulariser coefficient: `loss += signed_coef · H̄`.
    pub fn signed_coef(&self) -> f64 {
        match self.regularizer {
            Regularizer::None => 0.0,
            Regularizer::Bonus => -self.coef,
            Regularizer::Penalty => self.coef,
        }
    }

    /// Range and consistency checks, each naming its key.
    pub fn validate(&self) -> Result<(), String> {
        let f = |k: &str, v: f64, lo: f64, hi: f64| {
            if v.is_nan() || v < lo || v > hi {
                Err(format!("key 'entropy.{k}' must be in [{lo}, {hi}], got {v}"))
            } else {
                Ok(())
            }
        };
        f("coef", self.coef, 0.0, 100.0)?;
        f("top_entropy_quantile", self.top_entropy_quantile, 1e-6, 1.0)?;
        f("edis.tau_burst", self.edis.tau_burst, 0.0, 100.0)?;
        f("edis.tau_rebound", self.edis.tau_rebound, 0.0, 100.0)?;
        f(
            "deepconf.bottom_percent",
            self.deepconf.bottom_percent as f64,
            1.0,
            100.0,
        )?;
        f("top_logprobs", self.top_logprobs as f64, 0.0, 1000.0)?;
        f("filter.oversample", self.filter.oversample, 1.0, 16.0)?;
        f("weight.alpha", self.weight.alpha, 1e-3, 1e3)?;
        f("weight.eps", self.weight.eps, 0.0, 1.0)?;
        self.cov_control.validate()?;
        if let Some(a) = &self.adaptive {
            a.validate()?;
            if self.regularizer != Regularizer::Bonus {
                return Err(
                    "key 'entropy.adaptive' adapts an entropy bonus: set 'entropy.regularizer' to \"bonus\"".into(),
                );
            }
        }
        let objective = self.objective.traits();
        if !objective.needs_labels && (self.filter.enabled || self.weight.enabled) {
            return Err(format!(
                "keys 'entropy.filter'/'entropy.weight' need correctness from the reward functions: \
                 set 'entropy.objective' to \"reward\" (it is {:?})",
                self.objective
            ));
        }
        match objective.entropy_loss {
            EntropyLoss::Minimize if self.regularizer != Regularizer::None => {
                return Err(format!(
                    "key 'entropy.regularizer': {:?} already minimises entropy; leave it \"none\"",
                    self.objective
                ));
            }
            EntropyLoss::Minimize | EntropyLoss::Regularizer => {}
        }
        Ok(())
    }
}
