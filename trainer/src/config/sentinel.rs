//! `[sentinel]`: Entropy Sentinel's domains and settings (METHODS-2 §1; defaults are the released
//! code's: T = 0.5, top-20 log-probs, truncated answers dropped, 80/20 split with seed 42, a
//! random forest of 100 trees over max_depth {3, 5, 10} × min_samples_split {2, 5, 10} with
//! balanced-subsample weights, isotonic calibration (RQ1's text), 10-D features (RQ1's default)).

use entrl_rewards::sentinel::forest::ForestParams;
use entrl_rewards::sentinel::logistic::{LogisticParams, Penalty};
use entrl_rewards::sentinel::{CalibrationMethod, ClassifierSpec, FeatureSet};
use serde::{Deserialize, Serialize};

use super::source::SourceSpec;

/// One domain: a named problem source; `train = true` puts its first 80% (after the seeded
/// shuffle) into the classifier's training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelDomain {
    /// Name in reports.
    pub name: String,
    /// Problems: a synthetic task (`{ kind = ... }`) or a JSONL file (`{ path = ... }`).
    pub source: SourceSpec,
    /// A training domain.
    #[serde(default)]
    pub train: bool,
    /// Problems drawn (default `sentinel.problems`).
    #[serde(default)]
    pub problems: Option<usize>,
}

/// Which classifier family the grid searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierKind {
    RandomForest,
    Logistic,
}

/// Calibration of the chosen classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationChoice {
    Isotonic,
    Sigmoid,
    None,
}

/// The `[sentinel]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelSection {
    /// The domains (`[[sentinel.domains]]`).
    pub domains: Vec<SentinelDomain>,
    /// Problems per domain.
    #[serde(default = "d_problems")]
    pub problems: usize,
    /// Sampling temperature of the answers.
    #[serde(default = "d_temperature")]
    pub temperature: f64,
    /// Top-k log-probs recorded per token (the features' entropy runs over them).
    #[serde(default = "d_top_logprobs")]
    pub top_logprobs: usize,
    /// Longest answer (default: `eval.max_completion_length`, else `rl.max_completion_length`).
    #[serde(default)]
    pub max_completion_length: Option<usize>,
    /// Drop answers that hit the length limit (the released code keeps only EOS-terminated ones).
    #[serde(default = "d_true")]
    pub drop_truncated: bool,
    /// Share of a training domain used for training (the rest is its held-out part).
    #[serde(default = "d_train_fraction")]
    pub train_fraction: f64,
    /// Seed of the split, the pooled shuffle, the forests and the answers' sampling.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Feature family: `d17`, `d10`, `d3`, `d1`.
    #[serde(default = "d_features")]
    pub features: FeatureSet,
    /// Extra feature columns: `length` (tokens) or a signal's name (`edis`, `mean_entropy`,
    /// `self_certainty`, ...).
    #[serde(default)]
    pub extra_features: Vec<String>,
    /// The classifier family.
    #[serde(default = "d_classifier")]
    pub classifier: ClassifierKind,
    /// Forest: trees.
    #[serde(default = "d_trees")]
    pub trees: usize,
    /// Forest grid: `max_depth` values.
    #[serde(default = "d_max_depth")]
    pub max_depth: Vec<usize>,
    /// Forest grid: `min_samples_split` values.
    #[serde(default = "d_min_samples_split")]
    pub min_samples_split: Vec<usize>,
    /// Logistic grid: C values.
    #[serde(default = "d_c")]
    pub c: Vec<f64>,
    /// Logistic penalty (`l1` as released, with liblinear's penalised intercept; `l2`).
    #[serde(default = "d_penalty")]
    pub penalty: Penalty,
    /// Balanced class weights.
    #[serde(default = "d_true")]
    pub balanced: bool,
    /// `isotonic`, `sigmoid` or `none`.
    #[serde(default = "d_calibration")]
    pub calibration: CalibrationChoice,
    /// Folds of the grid search and the calibrated clones (at most the minority class's count).
    #[serde(default = "d_cv_folds")]
    pub cv_folds: usize,
    /// Single features of the ATC baselines.
    #[serde(default = "d_atc")]
    pub atc_features: Vec<String>,
}

fn d_problems() -> usize {
    300
}
fn d_temperature() -> f64 {
    0.5
}
fn d_top_logprobs() -> usize {
    20
}
fn d_true() -> bool {
    true
}
fn d_train_fraction() -> f64 {
    0.8
}
fn d_seed() -> u64 {
    42
}
fn d_features() -> FeatureSet {
    FeatureSet::D10
}
fn d_classifier() -> ClassifierKind {
    ClassifierKind::RandomForest
}
fn d_trees() -> usize {
    100
}
fn d_max_depth() -> Vec<usize> {
    vec![3, 5, 10]
}
fn d_min_samples_split() -> Vec<usize> {
    vec![2, 5, 10]
}
fn d_c() -> Vec<f64> {
    vec![0.5, 2.0, 10.0]
}
fn d_penalty() -> Penalty {
    Penalty::L1
}
fn d_calibration() -> CalibrationChoice {
    CalibrationChoice::Isotonic
}
fn d_cv_folds() -> usize {
    5
}
fn d_atc() -> Vec<String> {
    ["max", "nll_sum", "se_sum", "q10"].map(String::from).to_vec()
}

impl SentinelSection {
    /// The classifier grid.
    pub fn grid(&self) -> Vec<ClassifierSpec> {
        match self.classifier {
            ClassifierKind::RandomForest => self
                .max_depth
                .iter()
                .flat_map(|&d| {
                    self.min_samples_split.iter().map(move |&m| {
                        ClassifierSpec::RandomForest(ForestParams {
                            n_estimators: self.trees,
                            max_depth: Some(d),
                            min_samples_split: m,
                            balanced: self.balanced,
                        })
                    })
                })
                .collect(),
            ClassifierKind::Logistic => self
                .c
                .iter()
                .map(|&c| {
                    ClassifierSpec::Logistic(LogisticParams {
                        penalty: self.penalty,
                        c,
                        balanced: self.balanced,
                        penalise_intercept: true,
                    })
                })
                .collect(),
        }
    }

    /// The calibration method, if any.
    pub fn calibration_method(&self) -> Option<CalibrationMethod> {
        match self.calibration {
            CalibrationChoice::Isotonic => Some(CalibrationMethod::Isotonic),
            CalibrationChoice::Sigmoid => Some(CalibrationMethod::Sigmoid),
            CalibrationChoice::None => None,
        }
    }

    /// Range checks naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.domains.is_empty() {
            return Err("key 'sentinel.domains': at least one domain".into());
        }
        if !self.domains.iter().any(|d| d.train) {
            return Err("key 'sentinel.domains': mark at least one domain 'train = true'".into());
        }
        for (i, d) in self.domains.iter().enumerate() {
            if self.domains[..i].iter().any(|o| o.name == d.name) {
                return Err(format!("key 'sentinel.domains[{i}].name': '{}' appears twice", d.name));
            }
            if let SourceSpec::Synthetic(t) = &d.source {
                t.validate()
                    .map_err(|m| format!("key 'sentinel.domains[{i}].source': {m}"))?;
            }
        }
        let positive = |k: &str, v: usize| {
            if v == 0 {
                Err(format!("key 'sentinel.{k}' must be >= 1"))
            } else {
                Ok(())
            }
        };
        positive("problems", self.problems)?;
        positive("top_logprobs", self.top_logprobs)?;
        positive("trees", self.trees)?;
        if !(self.temperature > 0.0 && self.temperature <= 10.0) {
            return Err(format!(
                "key 'sentinel.temperature' must be in (0, 10], got {}",
                self.temperature
            ));
        }
        if !(self.train_fraction > 0.0 && self.train_fraction <= 1.0) {
            return Err(format!(
                "key 'sentinel.train_fraction' must be in (0, 1], got {}",
                self.train_fraction
            ));
        }
        if self.cv_folds < 2 {
            return Err("key 'sentinel.cv_folds' must be >= 2".into());
        }
        if self.min_samples_split.iter().any(|&m| m < 2) {
            return Err("key 'sentinel.min_samples_split': values must be >= 2".into());
        }
        if self.c.iter().any(|&c| c.is_nan() || c <= 0.0) {
            return Err("key 'sentinel.c': values must be > 0".into());
        }
        if self.grid().is_empty() {
            return Err("the classifier grid is empty (keys 'sentinel.max_depth', 'min_samples_split' or 'c')".into());
        }
        for (key, names) in [
            ("extra_features", &self.extra_features),
            ("atc_features", &self.atc_features),
        ] {
            for n in names.iter() {
                if !entrl_rewards::sentinel::is_column(n) {
                    return Err(format!(
                        "key 'sentinel.{key}': unknown feature '{n}' (known: {})",
                        entrl_rewards::sentinel::columns().join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `[monitor]`: at every held-out evaluation of a training run, a fitted Sentinel estimates the
/// policy's accuracy on a held-out stream without labels (`monitor/sentinel_accuracy`), logged
/// next to the verifier's accuracy on the same answers (`monitor/verifier_accuracy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSection {
    /// A Sentinel file from `entrl sentinel fit`.
    pub sentinel: std::path::PathBuf,
    /// The held-out stream (default `data.eval`, else `data.train`, drawn with `data.eval_seed`).
    #[serde(default)]
    pub stream: Option<SourceSpec>,
    /// Problems answered per evaluation.
    #[serde(default = "d_monitor_problems")]
    pub problems: usize,
}

fn d_monitor_problems() -> usize {
    200
}

impl MonitorSection {
    /// Range checks naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.problems == 0 {
            return Err("key 'monitor.problems' must be >= 1".into());
        }
        if let Some(SourceSpec::Synthetic(t)) = &self.stream {
            t.validate().map_err(|m| format!("key 'monitor.stream': {m}"))?;
        }
        Ok(())
    }
}
