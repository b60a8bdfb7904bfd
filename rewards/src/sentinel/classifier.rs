//! The classifiers behind one interface, scikit-learn's cross-validation around them: stratified
//! k-fold splits, k-fold calibrated clones (`CalibratedClassifierCV(cv=k)`), and a grid search by
//! mean fold AUROC (`GridSearchCV(scoring="roc_auc")`).

use serde::{Deserialize, Serialize};

use super::calibration::{CalibrationMethod, Calibrator};
use super::cart::{Tree, TreeParams};
use super::forest::{Forest, ForestParams};
use super::logistic::{Logistic, LogisticParams};
use crate::stats::auroc;

/// A classifier and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClassifierSpec {
    /// One CART tree, all features at every split (no class weights).
    Tree(TreeParams),
    /// A random forest.
    RandomForest(ForestParams),
    /// Logistic regression.
    Logistic(LogisticParams),
}

/// A fitted classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fitted {
    Tree(Tree),
    RandomForest(Forest),
    Logistic(Logistic),
}

impl Fitted {
    /// Fits `spec` on rows `x` and labels `y`. `seed`: a forest's seed; a tree's splitter state
    /// (its low 32 bits); unused by logistic regression.
    pub fn fit(spec: &ClassifierSpec, x: &[Vec<f64>], y: &[bool], seed: u64) -> Fitted {
        match spec {
            ClassifierSpec::Tree(p) => Fitted::Tree(Tree::fit(x, y, None, *p, seed as u32)),
            ClassifierSpec::RandomForest(p) => Fitted::RandomForest(Forest::fit(x, y, *p, seed)),
            ClassifierSpec::Logistic(p) => Fitted::Logistic(Logistic::fit(x, y, *p)),
        }
    }

    /// P(correct).
    pub fn proba(&self, row: &[f64]) -> f64 {
        match self {
            Fitted::Tree(t) => t.proba(row),
            Fitted::RandomForest(f) => f.proba(row),
            Fitted::Logistic(l) => l.proba(row),
        }
    }

    /// What a calibrator sees: the decision function where there is one (logistic regression),
    /// else the probability — sklearn's order of preference.
    pub fn calibration_score(&self, row: &[f64]) -> f64 {
        match self {
            Fitted::Logistic(l) => l.decision(row),
            other => other.proba(row),
        }
    }
}

/// sklearn's `StratifiedKFold(k, shuffle=False)`: the test fold of each row. Classes are taken
/// in order of first appearance; the i-th row of a class (in row order) goes to a fold by the
/// allocation of the sorted labels dealt round-robin into k folds.
pub fn stratified_folds(y: &[bool], k: usize) -> Vec<usize> {
    let mut classes: Vec<bool> = Vec::new();
    for &v in y {
        if !classes.contains(&v) {
            classes.push(v);
        }
    }
    let encoded: Vec<usize> = y
        .iter()
        .map(|v| classes.iter().position(|c| c == v).unwrap_or(0))
        .collect();
    let mut sorted = encoded.clone();
    sorted.sort_unstable();
    // allocation[fold][class]: how many rows of the class land in the fold.
    let mut allocation = vec![vec![0usize; classes.len()]; k];
    for (i, &c) in sorted.iter().enumerate() {
        allocation[i % k][c] += 1;
    }
    let mut folds = vec![0; y.len()];
    for c in 0..classes.len() {
        let mut fold_of = allocation
            .iter()
            .enumerate()
            .flat_map(|(f, per_class)| std::iter::repeat_n(f, per_class[c]));
        for (row, _) in encoded.iter().enumerate().filter(|&(_, &e)| e == c) {
            folds[row] = fold_of.next().unwrap_or(0);
        }
    }
    folds
}

/// Rows of `x`/`y` whose fold is (`inside`) or is not `fold`.
fn subset(x: &[Vec<f64>], y: &[bool], folds: &[usize], fold: usize, inside: bool) -> (Vec<Vec<f64>>, Vec<bool>) {
    let rows = (0..y.len()).filter(|&i| (folds[i] == fold) == inside);
    rows.map(|i| (x[i].clone(), y[i])).unzip()
}

/// `CalibratedClassifierCV(estimator, cv=k, ensemble=True)`: k clones, each fitted on k − 1
/// folds and calibrated on the held-out fold; `proba` averages the calibrated clones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibratedEnsemble {
    /// The clones and their calibrators.
    pub members: Vec<(Fitted, Calibrator)>,
}

impl CalibratedEnsemble {
    /// Fits the k calibrated clones; every clone gets the same `seed` (sklearn clones one
    /// estimator with one `random_state`).
    pub fn fit(
        spec: &ClassifierSpec,
        method: CalibrationMethod,
        k: usize,
        x: &[Vec<f64>],
        y: &[bool],
        seed: u64,
    ) -> Self {
        let folds = stratified_folds(y, k);
        let members = (0..k)
            .map(|fold| {
                let (xt, yt) = subset(x, y, &folds, fold, false);
                let (xc, yc) = subset(x, y, &folds, fold, true);
                let model = Fitted::fit(spec, &xt, &yt, seed);
                let scores: Vec<f64> = xc.iter().map(|r| model.calibration_score(r)).collect();
                let calibrator = Calibrator::fit(method, &scores, &yc);
                (model, calibrator)
            })
            .collect();
        CalibratedEnsemble { members }
    }

    /// Mean calibrated P(correct) of the clones.
    pub fn proba(&self, row: &[f64]) -> f64 {
        let sum: f64 = self
            .members
            .iter()
            .map(|(m, c)| c.apply(m.calibration_score(row)))
            .sum();
        sum / self.members.len() as f64
    }
}

/// Mean held-out AUROC of `spec` over stratified k folds (a fold with one class scores 0.5, as
/// it cannot rank).
pub fn cv_auroc(spec: &ClassifierSpec, k: usize, x: &[Vec<f64>], y: &[bool], seed: u64) -> f64 {
    let folds = stratified_folds(y, k);
    let total: f64 = (0..k)
        .map(|fold| {
            let (xt, yt) = subset(x, y, &folds, fold, false);
            let (xv, yv) = subset(x, y, &folds, fold, true);
            let model = Fitted::fit(spec, &xt, &yt, seed);
            let scores: Vec<f64> = xv.iter().map(|r| model.proba(r)).collect();
            auroc(&scores, &yv).unwrap_or(0.5)
        })
        .sum();
    total / k as f64
}

/// Grid search: each candidate's mean fold AUROC and the index of the best (the first of equals,
/// as sklearn ranks them).
pub fn grid_search(grid: &[ClassifierSpec], k: usize, x: &[Vec<f64>], y: &[bool], seed: u64) -> (usize, Vec<f64>) {
    let scores: Vec<f64> = grid.iter().map(|spec| cv_auroc(spec, k, x, y, seed)).collect();
    let best = scores
        .iter()
        .enumerate()
        .fold(0, |best, (i, &s)| if s > scores[best] { i } else { best });
    (best, scores)
}
