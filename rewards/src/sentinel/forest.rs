//! A random forest as scikit-learn's `RandomForestClassifier` grows one: each tree sees a bootstrap
//! sample (n rows drawn with replacement, as integer weights), examines ⌊√d⌋ randomly chosen
//! features per split, and with `balanced_subsample` weighs each class by n / (2·n_c) counted on
//! its own bootstrap sample; `proba` is the mean over trees of the leaves' weighted class
//! fractions. The random streams are our own (ChaCha8 for bootstraps, sklearn's xorshift per tree
//! for features), so a seed gives the same forest on every machine but not sklearn's forest:
//! the test compares held-out AUROC with sklearn's over several seeds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::cart::{Tree, TreeParams};

/// A forest's settings (sklearn's names and defaults where they have one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestParams {
    /// Trees (sklearn `n_estimators`).
    pub n_estimators: usize,
    /// Deepest level; `None` grows until pure.
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split.
    pub min_samples_split: usize,
    /// `class_weight = "balanced_subsample"` when true, none when false.
    pub balanced: bool,
}

/// A fitted forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// The trees.
    pub trees: Vec<Tree>,
}

/// Per-row weights of one bootstrap sample: draw counts, times n'/(2·n'_c) when balanced (n' and
/// n'_c counted with repetition, as sklearn's `compute_sample_weight("balanced", y, indices)`).
fn bootstrap_weights(y: &[bool], balanced: bool, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let n = y.len();
    let mut counts = vec![0.0; n];
    for _ in 0..n {
        counts[rng.random_range(0..n)] += 1.0;
    }
    if !balanced {
        return counts;
    }
    let mut per_class = [0.0; 2];
    for (c, &label) in counts.iter().zip(y) {
        per_class[label as usize] += c;
    }
    let class_weight = per_class.map(|k: f64| if k > 0.0 { n as f64 / (2.0 * k) } else { 0.0 });
    counts
        .iter()
        .zip(y)
        .map(|(c, &label)| c * class_weight[label as usize])
        .collect()
}

impl Forest {
    /// Fits `params.n_estimators` trees on rows `x` (n × d) and labels `y`, seeded.
    pub fn fit(x: &[Vec<f64>], y: &[bool], params: ForestParams, seed: u64) -> Forest {
        let d = x.first().map_or(1, Vec::len);
        let tree_params = TreeParams {
            max_depth: params.max_depth,
            min_samples_split: params.min_samples_split,
            max_features: Some(((d as f64).sqrt().floor() as usize).max(1)),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let trees = (0..params.n_estimators)
            .map(|_| {
                let w = bootstrap_weights(y, params.balanced, &mut rng);
                let splitter_seed = rng.random_range(0..i32::MAX as u32);
                Tree::fit(x, y, Some(&w), tree_params, splitter_seed)
            })
            .collect();
        Forest { trees }
    }

    /// Mean over trees of the positive class fraction in the leaf `row` reaches.
    pub fn proba(&self, row: &[f64]) -> f64 {
        self.trees.iter().map(|t| t.proba(row)).sum::<f64>() / self.trees.len() as f64
    }
}
