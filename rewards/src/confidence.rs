//! DeepConf trace confidence (Fu et al., arXiv 2508.15260; METHODS §7) from the top-k log-probs
//! a rollout records for every generated token.
//!
//! * token confidence `C_t = −(1/k) Σ_{j≤k} ln P_t(j)` over the k returned log-probs (larger =
//!   more peaked);
//! * mean confidence `mean_t C_t`;
//! * group confidences: means of C over every window of n consecutive tokens (stride 1; one
//!   window of all tokens when T < n); the lowest group, and the bottom 10% groups' mean
//!   (⌊0.1·#windows⌋ lowest, at least one);
//! * tail confidence: mean C over the last `tail` tokens.
//!
//! DeepConf's window and tail (2048 tokens) are longer than a small model's traces; entrl scales
//! them (ASSUMPTION, config values): `0` means `clamp(⌈T/8⌉, 1, 2048)`. Every measure of an
//! empty trace is 0.

use serde::{Deserialize, Serialize};

/// Window and tail lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepConfParams {
    /// Group window n in tokens (0 = ⌈T/8⌉, at most 2048).
    pub window: usize,
    /// Tail length in tokens (0 = ⌈T/8⌉, at most 2048).
    pub tail: usize,
    /// Share of windows averaged by the bottom-group measure (DeepConf: 10%).
    pub bottom_percent: u32,
}

impl Default for DeepConfParams {
    fn default() -> Self {
        Self {
            window: 0,
            tail: 0,
            bottom_percent: 10,
        }
    }
}

/// `len` for a trace of `t` tokens: as given, or the scaled default.
fn scaled(len: usize, t: usize) -> usize {
    if len > 0 { len } else { t.div_ceil(8).clamp(1, 2048) }
}

/// Token confidence from one position's returned top-k log-probs (0 when none were returned).
pub fn token_confidence(top_logprobs: impl IntoIterator<Item = f32>) -> f32 {
    let (sum, n) = top_logprobs
        .into_iter()
        .fold((0.0f64, 0usize), |(s, n), x| (s + x as f64, n + 1));
    if n == 0 { 0.0 } else { -(sum / n as f64) as f32 }
}

fn mean(c: &[f32]) -> f64 {
    if c.is_empty() {
        return 0.0;
    }
    c.iter().map(|&x| x as f64).sum::<f64>() / c.len() as f64
}

/// Means of every window of `n` consecutive values (one window of all when `c.len() < n`).
pub fn group_confidences(c: &[f32], n: usize) -> Vec<f64> {
    if c.is_empty() {
        return vec![];
    }
    if c.len() < n {
        return vec![mean(c)];
    }
    c.windows(n).map(mean).collect()
}

/// The DeepConf measures of one trace of token confidences.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TraceConfidence {
    /// `mean_t C_t`.
    pub mean: f64,
    /// Lowest window mean.
    pub lowest_group: f64,
    /// Mean of the bottom windows.
    pub bottom_groups: f64,
    /// Mean over the tail.
    pub tail: f64,
}

impl TraceConfidence {
    /// Measures of the token confidences `c`.
    pub fn of(c: &[f32], p: &DeepConfParams) -> Self {
        if c.is_empty() {
            return Self {
                mean: 0.0,
                lowest_group: 0.0,
                bottom_groups: 0.0,
                tail: 0.0,
            };
        }
        let mut groups = group_confidences(c, scaled(p.window, c.len()));
        groups.sort_by(f64::total_cmp);
        let keep = (groups.len() * p.bottom_percent as usize / 100).max(1);
        let tail = scaled(p.tail, c.len()).min(c.len());
        Self {
            mean: mean(c),
            lowest_group: groups[0],
            bottom_groups: groups[..keep].iter().sum::<f64>() / keep as f64,
            tail: mean(&c[c.len() - tail..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked() {
        // C = [1, 3, 2, 6]; n = 2: windows 2, 2.5, 4 → lowest 2, bottom (⌊0.3⌋ → 1) 2; tail 2 → 4
        let c = [1.0f32, 3.0, 2.0, 6.0];
        let p = DeepConfParams {
            window: 2,
            tail: 2,
            bottom_percent: 10,
        };
        let t = TraceConfidence::of(&c, &p);
        assert_eq!((t.mean, t.lowest_group, t.bottom_groups, t.tail), (3.0, 2.0, 2.0, 4.0));
        assert_eq!(token_confidence([-0.5, -1.5]), 1.0);
        // T < n: one window of everything
        assert_eq!(group_confidences(&c, 9), vec![3.0]);
    }
}
