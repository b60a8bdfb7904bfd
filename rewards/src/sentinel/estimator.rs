//! Entropy Sentinel's accuracy estimator (METHODS-2 §1c): standardise the features on the pooled
//! training rows, choose a classifier from a grid by k-fold AUROC, refit it (or fit k calibrated
//! clones of it), and estimate a domain's accuracy as the mean P(correct) of its answers. Beside
//! it the ATC baseline: one feature, oriented so correct answers score higher, thresholded at the
//! training error rate's quantile.

use serde::{Deserialize, Serialize};

use super::calibration::CalibrationMethod;
use super::classifier::{CalibratedEnsemble, ClassifierSpec, Fitted, grid_search};
use super::features::quantile;

/// What `Sentinel::fit` needs besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelSpec {
    /// The candidate classifiers (the grid).
    pub grid: Vec<ClassifierSpec>,
    /// Calibration of the chosen classifier; `None` = its own probabilities.
    pub calibration: Option<CalibrationMethod>,
    /// Folds for the grid search and the calibrated clones: `min(cv_folds, minority count)`.
    pub cv_folds: usize,
    /// Seed of the forests.
    pub seed: u64,
}

/// sklearn's `StandardScaler`: (x − mean) / population std; a constant feature keeps scale 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Fits on rows `x` (n × d, n ≥ 1).
    pub fn fit(x: &[Vec<f64>]) -> Scaler {
        let n = x.len() as f64;
        let d = x.first().map_or(0, Vec::len);
        let mean: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n).collect();
        let scale = (0..d)
            .map(|j| {
                let var = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
                if var > 0.0 { var.sqrt() } else { 1.0 }
            })
            .collect();
        Scaler { mean, scale }
    }

    /// One row, standardised.
    pub fn transform(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((x, m), s)| (x - m) / s)
            .collect()
    }
}

/// The chosen classifier, plain or as calibrated clones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum SentinelModel {
    Plain { classifier: Fitted },
    Calibrated { ensemble: CalibratedEnsemble },
}

/// A fitted Sentinel over a fixed list of feature columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentinel {
    /// Standardisation of the training rows.
    pub scaler: Scaler,
    /// The grid's winner.
    pub selected: ClassifierSpec,
    /// Mean fold AUROC of each grid entry, in grid order.
    pub grid_auroc: Vec<f64>,
    /// Folds used.
    pub folds: usize,
    /// The fitted model.
    pub model: SentinelModel,
}

impl Sentinel {
    /// Fits on raw rows `x` (n × d) and correctness labels `y`. Errors: no rows, one class only,
    /// or a minority class too small for two folds.
    pub fn fit(spec: &SentinelSpec, x: &[Vec<f64>], y: &[bool]) -> Result<Sentinel, String> {
        let n_pos = y.iter().filter(|&&v| v).count();
        let minority = n_pos.min(y.len() - n_pos);
        if y.is_empty() {
            return Err("no training rows".into());
        }
        if minority == 0 {
            let class = if n_pos == 0 { "incorrect" } else { "correct" };
            return Err(format!(
                "all {} training answers are {class}: a classifier needs both classes",
                y.len()
            ));
        }
        if minority < 2 || spec.cv_folds < 2 {
            return Err(format!(
                "cross-validation needs at least 2 folds and 2 rows of each class (minority class: {minority} rows, cv_folds = {})",
                spec.cv_folds
            ));
        }
        if spec.grid.is_empty() {
            return Err("the classifier grid is empty".into());
        }
        let folds = spec.cv_folds.min(minority);
        let scaler = Scaler::fit(x);
        let z: Vec<Vec<f64>> = x.iter().map(|r| scaler.transform(r)).collect();
        let (best, grid_auroc) = grid_search(&spec.grid, folds, &z, y, spec.seed);
        let selected = spec.grid[best];
        let model = match spec.calibration {
            None => SentinelModel::Plain {
                classifier: Fitted::fit(&selected, &z, y, spec.seed),
            },
            Some(method) => SentinelModel::Calibrated {
                ensemble: CalibratedEnsemble::fit(&selected, method, folds, &z, y, spec.seed),
            },
        };
        Ok(Sentinel {
            scaler,
            selected,
            grid_auroc,
            folds,
            model,
        })
    }

    /// P(correct) of one raw row.
    pub fn proba(&self, row: &[f64]) -> f64 {
        let z = self.scaler.transform(row);
        match &self.model {
            SentinelModel::Plain { classifier } => classifier.proba(&z),
            SentinelModel::Calibrated { ensemble } => ensemble.proba(&z),
        }
    }

    /// Estimated accuracy of a set of answers: the mean P(correct).
    pub fn estimate(&self, rows: &[Vec<f64>]) -> f64 {
        rows.iter().map(|r| self.proba(r)).sum::<f64>() / rows.len().max(1) as f64
    }
}

/// Average Thresholded Confidence on one feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Atc {
    /// +1 when correct answers score higher on the raw feature (by the source means), else −1.
    pub sign: f64,
    /// The source error rate's quantile of the oriented scores.
    pub threshold: f64,
}

impl Atc {
    /// Fits on source scores and correctness; `None` without both classes.
    pub fn fit(scores: &[f64], correct: &[bool]) -> Option<Atc> {
        let mean_of = |want: bool| {
            let v: Vec<f64> = scores
                .iter()
                .zip(correct)
                .filter(|(_, c)| **c == want)
                .map(|(s, _)| *s)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let (right, wrong) = (mean_of(true)?, mean_of(false)?);
        let sign = if right >= wrong { 1.0 } else { -1.0 };
        let error = correct.iter().filter(|&&c| !c).count() as f64 / correct.len() as f64;
        let mut oriented: Vec<f64> = scores.iter().map(|s| sign * s).collect();
        oriented.sort_by(f64::total_cmp);
        Some(Atc {
            sign,
            threshold: quantile(&oriented, error),
        })
    }

    /// Estimated accuracy: the share of oriented scores at or above the threshold.
    pub fn estimate(&self, scores: &[f64]) -> f64 {
        let above = scores.iter().filter(|&&s| self.accepts(s)).count();
        above as f64 / scores.len().max(1) as f64
    }

    /// Whether one answer's score counts as correct: its oriented score at or above the threshold.
    pub fn accepts(&self, score: f64) -> bool {
        self.sign * score >= self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentinel::forest::ForestParams;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn spec() -> SentinelSpec {
        let forest = |max_depth| {
            ClassifierSpec::RandomForest(ForestParams {
                n_estimators: 30,
                max_depth: Some(max_depth),
                min_samples_split: 2,
                balanced: true,
            })
        };
        SentinelSpec {
            grid: vec![forest(3), forest(5)],
            calibration: Some(CalibrationMethod::Isotonic),
            cv_folds: 5,
            seed: 0,
        }
    }

    /// Answers whose one feature is N(0,1) shifted by +1 when correct; `acc` of them correct.
    fn domain(rng: &mut ChaCha8Rng, n: usize, acc: f64) -> (Vec<Vec<f64>>, Vec<bool>) {
        (0..n)
            .map(|_| {
                let correct = rng.random::<f64>() < acc;
                let noise: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
                (vec![noise + if correct { 1.5 } else { 0.0 }, rng.random()], correct)
            })
            .unzip()
    }

    /// The estimate of a domain is the mean posterior P(correct | x) under the *training* prior
    /// (here ½): under label shift it is pulled toward ½, as the paper's estimator is. The Bayes
    /// posterior for the feature (≈ N(1.5, 1) vs N(0, 1)) is the reference.
    #[test]
    fn estimates_equal_the_mean_training_posterior_and_rank_domains() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut x, mut y) = domain(&mut rng, 300, 0.8);
        let (x2, y2) = domain(&mut rng, 300, 0.2);
        x.extend(x2);
        y.extend(y2);
        let s = Sentinel::fit(&spec(), &x, &y).expect("fit");
        let posterior = |v: f64| 1.0 / (1.0 + (-(1.5 * v - 1.125)).exp());
        let mut last = 0.0;
        for acc in [0.1, 0.5, 0.9] {
            let (xt, _) = domain(&mut rng, 600, acc);
            let est = s.estimate(&xt);
            let bayes = xt.iter().map(|r| posterior(r[0])).sum::<f64>() / xt.len() as f64;
            assert!(
                (est - bayes).abs() < 0.05,
                "accuracy {acc}: estimated {est:.3}, Bayes posterior mean {bayes:.3}"
            );
            assert!(est > last + 0.1, "domains ranked: {est:.3} after {last:.3}");
            last = est;
        }
    }

    #[test]
    fn refuses_training_sets_it_cannot_learn_from() {
        let x = vec![vec![0.0]; 6];
        let err = Sentinel::fit(&spec(), &x, &[true; 6]).expect_err("one class");
        assert!(err.contains("all 6 training answers are correct"), "{err}");
        let err = Sentinel::fit(&spec(), &x, &[true, false, true, true, true, true]).expect_err("minority of 1");
        assert!(err.contains("minority class: 1 rows"), "{err}");
    }

    #[test]
    fn atc_needs_both_classes_and_counts_ties_as_above() {
        assert!(Atc::fit(&[1.0, 2.0], &[true, true]).is_none());
        let atc = Atc::fit(&[0.0, 1.0, 2.0, 3.0], &[false, false, true, true]).expect("fit");
        assert_eq!((atc.sign, atc.threshold), (1.0, 1.5));
        assert_eq!(atc.estimate(&[1.5, 1.4, 9.0, -1.0]), 0.5);
    }
}
