//! A CART classification tree for two classes, built as scikit-learn 1.6's
//! `DecisionTreeClassifier` builds one (depth-first, gini, best splitter), so that a tree with the
//! same xorshift seed gives the same `predict_proba`:
//!
//! * features are read as f32 (sklearn casts `X` to float32); a threshold is the f64 midpoint of
//!   two adjacent distinct f32 values (values within 1e-7 count as equal);
//! * features are visited in the order sklearn's splitter draws them from its `rand_r` state
//!   (`seed`), keeping its constant-feature bookkeeping; where two features tie for the best
//!   split the first visited wins, so the order decides the tree;
//! * `max_features` features are examined per split (a forest's √d; all for a single tree);
//! * a node is a leaf at `max_depth`, below `min_samples_split` distinct rows, or when pure;
//! * a leaf predicts its weighted class fractions.
//!
//! Rows with weight 0 (a bootstrap's left-out rows) take no part, as in sklearn.

use serde::{Deserialize, Serialize};

/// Values closer than this are one value (sklearn's `FEATURE_THRESHOLD`).
const FEATURE_THRESHOLD: f64 = 1e-7;
/// sklearn's `EPSILON` (float64 machine epsilon): impurity at or below it is pure.
const EPSILON: f64 = f64::EPSILON;

/// Growth limits of a tree (sklearn's names).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    /// Deepest level (root = 0); `None` grows until pure.
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split (≥ 2).
    pub min_samples_split: usize,
    /// Features examined per split; `None` = all.
    pub max_features: Option<usize>,
}

/// One node: a split or a leaf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum Node {
    /// Rows with `x[feature] as f32 <= threshold` go to `left`.
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    /// Weighted fraction of the positive class.
    Leaf { positive: f64 },
}

/// A fitted tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes; the root is 0.
    pub nodes: Vec<Node>,
}

/// sklearn's `our_rand_r` xorshift and `rand_int`.
pub(crate) struct RandR(u32);

impl RandR {
    pub(crate) fn new(seed: u32) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u32 {
        if self.0 == 0 {
            self.0 = 1; // sklearn's DEFAULT_SEED
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 % (i32::MAX as u32 + 1)
    }

    /// Uniform in `low..high`.
    fn int(&mut self, low: usize, high: usize) -> usize {
        low + self.next() as usize % (high - low)
    }
}

/// A node waiting on the builder's stack.
struct Pending {
    start: usize,
    end: usize,
    depth: usize,
    /// Weighted class sums of `samples[start..end]` (its impurity is their gini).
    sums: Sums,
    n_constant: usize,
    /// Where to write this node's index in its parent (`None` for the root).
    parent: Option<(usize, bool)>,
}

/// The best split found at a node.
struct Best {
    feature: usize,
    threshold: f64,
    pos: usize,
    left: Sums,
    right: Sums,
}

/// Weighted class sums `[negative, positive]` and their total.
#[derive(Clone, Copy, Default)]
struct Sums {
    class: [f64; 2],
    total: f64,
}

impl Sums {
    fn add(&mut self, positive: bool, w: f64) {
        self.class[positive as usize] += w;
        self.total += w;
    }
    fn sub(&mut self, positive: bool, w: f64) {
        self.class[positive as usize] -= w;
        self.total -= w;
    }
    fn gini(&self) -> f64 {
        let sq = self.class[0] * self.class[0] + self.class[1] * self.class[1];
        1.0 - sq / (self.total * self.total)
    }
}

/// The builder's state: rows as f32 columns, the sample order, sklearn's feature permutation.
struct Builder<'a> {
    /// `columns[f][i]`: feature `f` of row `i`, as f32.
    columns: Vec<Vec<f32>>,
    y: &'a [bool],
    w: &'a [f64],
    samples: Vec<usize>,
    features: Vec<usize>,
    constant_features: Vec<usize>,
    values: Vec<f32>,
    rng: RandR,
    params: TreeParams,
}

impl Tree {
    /// Fits a tree on rows `x` (n × d), labels `y` and weights `w` (`None` = 1 each); `seed` is the
    /// splitter's xorshift state (sklearn: `RandomState(random_state).randint(0, 2**31 - 1)`).
    pub fn fit(x: &[Vec<f64>], y: &[bool], w: Option<&[f64]>, params: TreeParams, seed: u32) -> Tree {
        let ones = vec![1.0; y.len()];
        let w = w.unwrap_or(&ones);
        let d = x.first().map_or(0, Vec::len);
        let columns = (0..d).map(|f| x.iter().map(|r| r[f] as f32).collect()).collect();
        let samples: Vec<usize> = (0..y.len()).filter(|&i| w[i] != 0.0).collect();
        let mut b = Builder {
            columns,
            y,
            w,
            values: vec![0.0; samples.len()],
            samples,
            features: (0..d).collect(),
            constant_features: vec![0; d],
            rng: RandR::new(seed),
            params,
        };
        b.build()
    }

    /// Weighted fraction of the positive class in the leaf that `row` reaches.
    pub fn proba(&self, row: &[f64]) -> f64 {
        let mut i = 0;
        loop {
            match self.nodes[i] {
                Node::Leaf { positive } => return positive,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if (row[feature] as f32) as f64 <= threshold {
                        left
                    } else {
                        right
                    };
                }
            }
        }
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n, Node::Leaf { .. })).count()
    }
}

impl Builder<'_> {
    fn sums(&self, range: std::ops::Range<usize>) -> Sums {
        let mut s = Sums::default();
        for &i in &self.samples[range] {
            s.add(self.y[i], self.w[i]);
        }
        s
    }

    /// Depth-first, left child first (sklearn pushes right, then left).
    fn build(&mut self) -> Tree {
        let mut nodes = Vec::new();
        let n = self.samples.len();
        let mut stack = vec![Pending {
            start: 0,
            end: n,
            depth: 0,
            sums: self.sums(0..n),
            n_constant: 0,
            parent: None,
        }];
        while let Some(p) = stack.pop() {
            let id = nodes.len();
            if let Some((parent, is_left)) = p.parent
                && let Node::Split { left, right, .. } = &mut nodes[parent]
            {
                *(if is_left { left } else { right }) = id;
            }
            let sums = p.sums;
            let too_small = p.end - p.start < self.params.min_samples_split.max(2);
            let at_depth = self.params.max_depth.is_some_and(|m| p.depth >= m);
            let split = if at_depth || too_small || sums.gini() <= EPSILON {
                None
            } else {
                self.split(p.start, p.end, p.n_constant, &sums)
            };
            match split {
                None => nodes.push(Node::Leaf {
                    positive: sums.class[1] / sums.total,
                }),
                Some((best, n_constant)) => {
                    nodes.push(Node::Split {
                        feature: best.feature,
                        threshold: best.threshold,
                        left: 0,
                        right: 0,
                    });
                    let child = |start, end, sums, is_left| Pending {
                        start,
                        end,
                        depth: p.depth + 1,
                        sums,
                        n_constant,
                        parent: Some((id, is_left)),
                    };
                    stack.push(child(best.pos, p.end, best.right, false));
                    stack.push(child(p.start, best.pos, best.left, true));
                }
            }
        }
        Tree { nodes }
    }

    /// sklearn's `node_split_best`: the best split of `samples[start..end]` and the number of
    /// features known constant below it; `None` when no split exists.
    fn split(&mut self, start: usize, end: usize, n_known: usize, total: &Sums) -> Option<(Best, usize)> {
        let d = self.features.len();
        let max_features = self.params.max_features.unwrap_or(d).min(d);
        let (mut f_i, mut visited, mut found_const, mut drawn_const) = (d, 0, 0, 0);
        let mut n_total_const = n_known;
        let mut best: Option<(f64, usize, usize, f64)> = None; // (proxy, feature, pos, threshold)
        while f_i > n_total_const && (visited < max_features || visited <= found_const + drawn_const) {
            visited += 1;
            let mut f_j = self.rng.int(drawn_const, f_i - found_const);
            if f_j < n_known {
                self.features.swap(drawn_const, f_j);
                drawn_const += 1;
                continue;
            }
            f_j += found_const;
            let feature = self.features[f_j];
            self.sort_by_feature(start, end, feature);
            let v = &self.values;
            if v[end - 1] as f64 <= v[start] as f64 + FEATURE_THRESHOLD {
                self.features.swap(f_j, n_total_const);
                found_const += 1;
                n_total_const += 1;
                continue;
            }
            f_i -= 1;
            self.features.swap(f_i, f_j);
            if let Some((proxy, pos, threshold)) = self.best_position(start, end, total)
                && best.is_none_or(|b| proxy > b.0)
            {
                best = Some((proxy, feature, pos, threshold));
            }
        }
        let outcome = best.map(|(_, feature, pos, threshold)| self.partition(start, end, feature, threshold, pos));
        // sklearn keeps the known constants' order for siblings and children.
        self.features[..n_known].copy_from_slice(&self.constant_features[..n_known]);
        let new = self.features[n_known..n_known + found_const].to_vec();
        self.constant_features[n_known..n_known + found_const].copy_from_slice(&new);
        outcome.map(|b| (b, n_total_const))
    }

    /// Sorts `samples[start..end]` by `feature` and fills `values` alike.
    fn sort_by_feature(&mut self, start: usize, end: usize, feature: usize) {
        let col = &self.columns[feature];
        self.samples[start..end].sort_by(|&a, &b| col[a].total_cmp(&col[b]));
        for p in start..end {
            self.values[p] = col[self.samples[p]];
        }
    }

    /// Scans the sorted node for the best threshold of one feature: (proxy improvement, position,
    /// threshold). Left sums are updated from whichever end is nearer, as sklearn does.
    fn best_position(&self, start: usize, end: usize, total: &Sums) -> Option<(f64, usize, f64)> {
        let v = &self.values;
        let (mut left, mut pos) = (Sums::default(), start);
        let mut best: Option<(f64, usize, f64)> = None;
        let mut p = start;
        while p < end {
            while p + 1 < end && v[p + 1] as f64 <= v[p] as f64 + FEATURE_THRESHOLD {
                p += 1;
            }
            let p_prev = p;
            p += 1;
            if p >= end {
                continue;
            }
            self.move_left_end(&mut left, &mut pos, p, end, total);
            let right = Sums {
                class: [total.class[0] - left.class[0], total.class[1] - left.class[1]],
                total: total.total - left.total,
            };
            let proxy = -right.total * right.gini() - left.total * left.gini();
            if best.is_none_or(|b| proxy > b.0) {
                let mut threshold = v[p_prev] as f64 / 2.0 + v[p] as f64 / 2.0;
                if threshold == v[p] as f64 || threshold.is_infinite() {
                    threshold = v[p_prev] as f64;
                }
                best = Some((proxy, p, threshold));
            }
        }
        best
    }

    /// Moves the left child's end from `pos` to `new_pos` (sklearn's `Criterion.update`).
    fn move_left_end(&self, left: &mut Sums, pos: &mut usize, new_pos: usize, end: usize, total: &Sums) {
        if new_pos - *pos <= end - new_pos {
            for &i in &self.samples[*pos..new_pos] {
                left.add(self.y[i], self.w[i]);
            }
        } else {
            *left = *total;
            for &i in self.samples[new_pos..end].iter().rev() {
                left.sub(self.y[i], self.w[i]);
            }
        }
        *pos = new_pos;
    }

    /// Reorders `samples[start..end]` so rows at or below `threshold` come first; the children's
    /// class sums.
    fn partition(&mut self, start: usize, end: usize, feature: usize, threshold: f64, pos: usize) -> Best {
        let col = &self.columns[feature];
        let (mut p, mut part_end) = (start, end);
        while p < part_end {
            if col[self.samples[p]] as f64 <= threshold {
                p += 1;
            } else {
                part_end -= 1;
                self.samples.swap(p, part_end);
            }
        }
        debug_assert_eq!(p, pos, "the partition agrees with the scan");
        Best {
            feature,
            threshold,
            pos,
            left: self.sums(start..pos),
            right: self.sums(pos..end),
        }
    }
}
