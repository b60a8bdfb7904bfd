//! Entropy Sentinel (arXiv 2601.09001; the released `pmemoli/Entropy-Sentinel`, METHODS-2 §1):
//! estimate a model's accuracy on a domain without labels, from the entropy profiles of its
//! answers. Per answer 17 features ([`features`]); a classifier fitted on a few labelled domains
//! turns them into P(correct) ([`estimator`]); a domain's estimate is the mean.
//!
//! The classifiers follow scikit-learn and are tested against it (`tests/sentinel_classifiers_golden.rs`):
//! a CART tree ([`cart`]), a random forest ([`forest`]), L1/L2 logistic regression ([`logistic`]),
//! isotonic and sigmoid calibration ([`calibration`]), k-fold calibrated clones and grid search
//! ([`classifier`]). Written here because no Rust crate has a forest with `predict_proba`,
//! per-split feature sampling and balanced-subsample weights (METHODS-2 §1e).

pub mod calibration;
pub mod cart;
pub mod classifier;
pub mod estimator;
pub mod features;
pub mod forest;
pub mod logistic;

pub use calibration::{CalibrationMethod, Calibrator};
pub use classifier::{CalibratedEnsemble, ClassifierSpec, Fitted, grid_search, stratified_folds};
pub use estimator::{Atc, Scaler, Sentinel, SentinelModel, SentinelSpec};
pub use features::{FEATURE_NAMES, FeatureSet, LENGTH, columns, features, is_column, response_features, topk_entropy};
