//! Entropy-Tree (METHODS §4): decode greedily (or by sampling) and fork a path into its top-b
//! tokens where the step's entropy `H_t ≥ τ` and its importance `I_t ≥ δ`, until the tree holds
//! `N_tree` paths; the leaves' answers give `p(a|x)` and a predictive entropy.
//!
//! Assumptions (the paper's code is not public; each is a config value): `I_t` is the last
//! layer's attention mass, mean over heads, of the query producing step t on the question's
//! tokens (or no gate at all); τ and δ are absolute values or percentiles of H_t and I_t on a
//! calibration set; b = 2; a child's weight is its parent's times its share of the offered
//! tokens' probability. Deviation from the SPEC's sequential queue: all live paths advance in one
//! batch (lockstep), so the leaf budget goes to forks in order of position (then path order) —
//! breadth-first over positions. Children share their parent's KV rows.

use std::ops::Range;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::model::Transformer;
use crate::rollout::sampler::top_indices;
use crate::rollout::{Completion, Control, DecodeHooks, Decoded, RolloutConfig, SamplingParams, StepView, decode};

/// A threshold given as a value or as a percentile of calibration data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Threshold {
    /// This value.
    Value(f64),
    /// This percentile (0–100, linear interpolation) of the statistic on a calibration set.
    Percentile(f64),
}

/// What `I_t` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Importance {
    /// Last-layer attention mass (mean over heads) on the question's tokens.
    QuestionAttention,
    /// No importance gate: fork on entropy alone.
    None,
}

/// How leaves are weighted in `p(a|x)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeafWeight {
    /// Product of the fork shares on the leaf's path.
    Weighted,
    /// Every leaf counts once.
    Frequency,
}

/// Entropy-Tree's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TreeConfig {
    /// τ: entropy (nats) at or above which a position may fork.
    pub tau: Threshold,
    /// δ: importance at or above which a position may fork.
    pub delta: Threshold,
    /// What the importance gate measures.
    pub importance: Importance,
    /// b: children per fork.
    pub branch: usize,
    /// N_tree: most paths (= leaves) per tree.
    pub max_leaves: usize,
    /// Leaf weighting of the answer distribution.
    pub leaf_weight: LeafWeight,
}

impl Default for TreeConfig {
    fn default() -> Self {
        Self {
            tau: Threshold::Percentile(80.0),
            delta: Threshold::Percentile(50.0),
            importance: Importance::QuestionAttention,
            branch: 2,
            max_leaves: 8,
            leaf_weight: LeafWeight::Weighted,
        }
    }
}

impl TreeConfig {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, t) in [("tau", self.tau), ("delta", self.delta)] {
            match t {
                Threshold::Percentile(p) if !(0.0..=100.0).contains(&p) => {
                    return Err(format!("{key}.percentile must be in [0, 100], got {p}"));
                }
                Threshold::Value(v) if v.is_nan() || v < 0.0 || (key == "delta" && v > 1.0) => {
                    let range = if key == "tau" {
                        "a number >= 0"
                    } else {
                        "an attention mass in [0, 1]"
                    };
                    return Err(format!("{key}.value must be {range}, got {v}"));
                }
                _ => {}
            }
        }
        if self.branch < 2 {
            return Err(format!("branch must be >= 2, got {}", self.branch));
        }
        if self.max_leaves == 0 {
            return Err("max_leaves must be >= 1".into());
        }
        Ok(())
    }

    /// Whether τ or δ still needs calibration data.
    pub fn needs_calibration(&self) -> bool {
        matches!(self.tau, Threshold::Percentile(_))
            || (self.importance == Importance::QuestionAttention && matches!(self.delta, Threshold::Percentile(_)))
    }

    /// The config with percentile thresholds replaced by their values on greedy decodes of
    /// `prompts` (every generated position's H_t and I_t; one decode per prompt at `cfg`'s length
    /// and end ids, whatever its sampling); unchanged when nothing needs calibration.
    pub fn calibrated<B: Backend>(
        &self,
        model: &Transformer<B>,
        prompts: &[Vec<u32>],
        cfg: &RolloutConfig,
        question: &[Range<usize>],
    ) -> Self {
        if !self.needs_calibration() {
            return self.clone();
        }
        let greedy = RolloutConfig {
            group_size: 1,
            sampling: SamplingParams {
                temperature: 0.0,
                top_logprobs: 0,
                ..cfg.sampling.clone()
            },
            ..cfg.clone()
        };
        let mut rec = Recorder {
            question: question.to_vec(),
            entropies: vec![],
            importances: vec![],
        };
        decode(model, prompts, &greedy, &mut rec);
        let resolve = |t: Threshold, xs: &mut Vec<f64>| match t {
            Threshold::Percentile(p) => Threshold::Value(percentile(xs, p)),
            v => v,
        };
        Self {
            tau: resolve(self.tau, &mut rec.entropies),
            delta: resolve(self.delta, &mut rec.importances),
            ..self.clone()
        }
    }
}

/// Linear-interpolation percentile (numpy's default) of `xs` (sorted in place); NaN when empty.
pub fn percentile(xs: &mut [f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let pos = p / 100.0 * (xs.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
}

/// Records H_t and I_t of every step (calibration).
struct Recorder {
    question: Vec<Range<usize>>,
    entropies: Vec<f64>,
    importances: Vec<f64>,
}

impl DecodeHooks for Recorder {
    fn attention_keys(&self, prompt: usize, _: usize) -> Option<Range<usize>> {
        Some(self.question[prompt].clone())
    }
    fn control(&mut self, view: &StepView) -> Control {
        self.entropies.push(view.stats.row.entropy);
        self.importances.push(view.attention.unwrap_or(0.0) as f64);
        Control::Continue
    }
}

/// The fork control: one path budget per (prompt, sample) root.
struct Grower<'a> {
    tau: f64,
    /// `None`: no importance gate.
    delta: Option<f64>,
    branch: usize,
    max_leaves: usize,
    question: &'a [Range<usize>],
    group: usize,
    /// Paths (live + finished) per root, indexed `prompt · G + sample`.
    paths: Vec<usize>,
}

impl DecodeHooks for Grower<'_> {
    fn attention_keys(&self, prompt: usize, _: usize) -> Option<Range<usize>> {
        self.delta.map(|_| self.question[prompt].clone())
    }
    fn control(&mut self, view: &StepView) -> Control {
        let c = view.completion;
        let root = c.prompt_index * self.group + c.sample_index;
        let important = match (self.delta, view.attention) {
            (None, _) => true,
            (Some(d), Some(i)) => i as f64 >= d,
            (Some(_), None) => false,
        };
        let n = self.paths[root];
        if view.stats.row.entropy < self.tau || !important || n >= self.max_leaves {
            return Control::Continue;
        }
        let b = self.branch.min(self.max_leaves - n + 1);
        self.paths[root] += b - 1;
        Control::Fork(top_indices(view.logits, b).into_iter().map(|i| i as u32).collect())
    }
}

/// Grows one tree per (prompt, sample) root; the leaves come back as completions (fork points
/// included), ordered by root then path. τ/δ must be values (see [`TreeConfig::calibrated`]).
pub fn grow<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    cfg: &RolloutConfig,
    tree: &TreeConfig,
    question: &[Range<usize>],
) -> Decoded {
    let value = |t: Threshold, key: &str| match t {
        Threshold::Value(v) => v,
        Threshold::Percentile(_) => panic!("tree {key} is a percentile: calibrate first"),
    };
    let mut g = Grower {
        tau: value(tree.tau, "tau"),
        delta: (tree.importance == Importance::QuestionAttention).then(|| value(tree.delta, "delta")),
        branch: tree.branch,
        max_leaves: tree.max_leaves,
        question,
        group: cfg.group_size,
        paths: vec![1; prompts.len() * cfg.group_size],
    };
    decode(model, prompts, cfg, &mut g)
}

/// Where `question`'s tokens sit in `prompt`: the last exact occurrence, else (a chat template
/// may tokenise the boundary differently) the whole prompt.
pub fn question_span(prompt: &[u32], question: &[u32]) -> Range<usize> {
    let n = question.len();
    if n > 0
        && n <= prompt.len()
        && let Some(i) = (0..=prompt.len() - n).rev().find(|&i| prompt[i..i + n] == *question)
    {
        return i..i + n;
    }
    0..prompt.len()
}

/// A leaf's weight under `rule`.
pub fn leaf_weight(leaf: &Completion, rule: LeafWeight) -> f64 {
    match rule {
        LeafWeight::Weighted => leaf.forks.iter().map(|f| f.share as f64).product(),
        LeafWeight::Frequency => 1.0,
    }
}

/// `p(a|x)` from (answer, weight) pairs, most probable first (ties: answer order). A leaf without
/// an answer counts as the answer `None`.
pub fn answer_distribution(leaves: &[(Option<String>, f64)]) -> Vec<(Option<String>, f64)> {
    let total: f64 = leaves.iter().map(|l| l.1).sum();
    let mut dist: Vec<(Option<String>, f64)> = vec![];
    for (a, w) in leaves {
        match dist.iter_mut().find(|d| &d.0 == a) {
            Some(d) => d.1 += w,
            None => dist.push((a.clone(), *w)),
        }
    }
    for d in &mut dist {
        d.1 /= total;
    }
    dist.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    dist
}

/// Predictive entropy `−Σ_a p(a|x) ln p(a|x)` (nats).
pub fn predictive_entropy(dist: &[(Option<String>, f64)]) -> f64 {
    -dist.iter().filter(|d| d.1 > 0.0).map(|d| d.1 * d.1.ln()).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], 80) = 3.4
        assert!((percentile(&mut [4.0, 1.0, 3.0, 2.0], 80.0) - 3.4).abs() < 1e-12);
        assert_eq!(percentile(&mut [5.0], 30.0), 5.0);
    }

    #[test]
    fn distribution_sums_to_one_and_entropy_is_bounded() {
        let s = |x: &str| Some(x.to_string());
        let leaves = [(s("4"), 0.5), (s("5"), 0.2), (s("4"), 0.1), (None, 0.2)];
        let d = answer_distribution(&leaves);
        assert_eq!(d[0].0, s("4"));
        assert!((d.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-12);
        let pe = predictive_entropy(&d);
        assert!(pe > 0.0 && pe <= 3f64.ln() + 1e-12);
        assert_eq!(predictive_entropy(&answer_distribution(&[(s("1"), 1.0)])), 0.0);
    }
}
