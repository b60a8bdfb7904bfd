//! The Stepwise Informativeness Assumption's quantities (arXiv 2604.06192, SPEC §5), tensor-free:
//! a chain's steps, the plug-in entropy of sampled answers, per-trace curves h_0..h_K (h_k: the
//! answer's conditional entropy after k steps), their drops and monotonicity violations, the Fano
//! bound, and curves resampled onto a normalised step axis for averaging across traces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a chain is cut into steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepSplit {
    /// At each newline (blank lines are not steps).
    Newlines,
    /// After `.`, `!` or `?` followed by whitespace, and at newlines.
    Sentences,
}

/// Byte offsets where each step of `chain` ends (the prefix `chain[..end]` holds steps 1..=k);
/// steps that are only whitespace are merged into the next.
pub fn step_ends(chain: &str, split: StepSplit) -> Vec<usize> {
    let bytes = chain.as_bytes();
    let mut ends = Vec::new();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let cut = match split {
            StepSplit::Newlines => b == b'\n',
            StepSplit::Sentences => {
                b == b'\n' || (matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace))
            }
        };
        if cut && !chain[last..=i].trim().is_empty() {
            ends.push(i + 1);
            last = i + 1;
        }
    }
    if !chain[last..].trim().is_empty() {
        ends.push(chain.len());
    }
    ends
}

/// Plug-in entropy (nats) of an empirical answer distribution; unparsed answers (`None`) form one
/// category of their own. 0 for no answers.
pub fn plugin_entropy(answers: &[Option<String>]) -> f64 {
    let mut counts: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for a in answers {
        *counts.entry(a.as_deref()).or_default() += 1;
    }
    let n = answers.len() as f64;
    counts.values().map(|&c| c as f64 / n).map(|p| -p * p.ln()).sum()
}

/// Fano's lower bound on the error after a step with answer entropy `h` (nats) over an alphabet of
/// `alphabet` answers: `max(0, (h − ln 2) / ln(|A| − 1))`; `None` when |A| ≤ 2 (no bound).
pub fn fano_bound(h: f64, alphabet: usize) -> Option<f64> {
    (alphabet > 2).then(|| ((h - std::f64::consts::LN_2) / ((alphabet - 1) as f64).ln()).max(0.0))
}

/// One trace's curve `h_0..h_K` (h_0: before any step) and its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Answer entropy after 0, 1, …, K steps.
    pub h: Vec<f64>,
}

impl Curve {
    /// `Δh_k = h_k − h_{k−1}`, k = 1..K (negative: the step informed the answer).
    pub fn deltas(&self) -> Vec<f64> {
        self.h.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Steps that raised the entropy by more than `tol`.
    pub fn violations(&self, tol: f64) -> usize {
        self.deltas().iter().filter(|&&d| d > tol).count()
    }

    /// Total drop per step, `(h_0 − h_K) / K` (0 without steps).
    pub fn mean_drop(&self) -> f64 {
        match self.h.len() {
            0 | 1 => 0.0,
            n => (self.h[0] - self.h[n - 1]) / (n - 1) as f64,
        }
    }

    /// The curve at `points` evenly spaced fractions of the chain (0 = before the first step,
    /// 1 = after the last), linearly interpolated.
    pub fn resampled(&self, points: usize) -> Vec<f64> {
        let k = self.h.len().saturating_sub(1);
        (0..points)
            .map(|i| {
                if k == 0 {
                    return self.h.first().copied().unwrap_or(0.0);
                }
                let u = i as f64 / (points - 1).max(1) as f64 * k as f64;
                let lo = (u.floor() as usize).min(k - 1);
                self.h[lo] + (u - lo as f64) * (self.h[lo + 1] - self.h[lo])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_end_at_newlines_or_sentences() {
        let c = "7+5=12\n\n12-3=9\n#### 9";
        assert_eq!(step_ends(c, StepSplit::Newlines), vec![7, 15, 21]);
        let s = "First add. Then subtract!\nSo 9.";
        let ends = step_ends(s, StepSplit::Sentences);
        let steps: Vec<&str> = ends
            .iter()
            .scan(0, |a, &e| {
                let r = &s[*a..e];
                *a = e;
                Some(r.trim())
            })
            .collect();
        assert_eq!(steps, ["First add.", "Then subtract!", "So 9."]);
    }

    #[test]
    fn entropy_bound_and_curves() {
        let a = |s: &str| Some(s.to_string());
        assert_eq!(plugin_entropy(&[a("1"), a("1")]), 0.0);
        assert!((plugin_entropy(&[a("1"), a("2"), None, None]) - (1.5f64 * 2f64.ln())).abs() < 1e-12);
        assert_eq!(fano_bound(0.5, 10), Some(0.0));
        assert!((fano_bound(2.0, 11).unwrap() - (2.0 - 2f64.ln()) / 10f64.ln()).abs() < 1e-12);
        assert_eq!(fano_bound(2.0, 2), None);
        let c = Curve {
            h: vec![2.0, 1.0, 1.5, 0.0],
        };
        assert_eq!(c.deltas(), vec![-1.0, 0.5, -1.5]);
        assert_eq!((c.violations(0.0), c.violations(0.6)), (1, 0));
        assert!((c.mean_drop() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.resampled(3), vec![2.0, 1.25, 0.0]);
        assert_eq!(Curve { h: vec![0.7] }.resampled(3), vec![0.7; 3]);
    }
}
