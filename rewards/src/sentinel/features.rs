//! Entropy Sentinel's per-response features (arXiv 2601.09001; the released
//! `core/computations.py`, docs/METHODS.md §2): 17 statistics of a response's token entropies
//! (over the recorded top-k log-probs) and of its negative log-likelihoods, in the released order.
//!
//! The token entropy sums `−p·ln p` over the top-k entries plus the sampled token when it is not
//! among them, without renormalising, as the released code does with vLLM's `logprobs=20`.
//! One choice the released code leaves open (`torch.std` of a single value is NaN): a one-token
//! response has std 0, hence skewness and kurtosis 0.

/// Names of the 17 features, in the released index order.
pub const FEATURE_NAMES: [&str; 17] = [
    "mean", "std", "max", "q10", "q25", "q50", "q75", "q90", "skewness", "kurtosis", "se_sum", "nll_avg", "nll_max",
    "nll_sum", "lntp", "mtp", "ppl",
];

/// The answer length in tokens, a column beside the 17 features (the length-only baseline).
pub const LENGTH: &str = "length";

/// Every column a Sentinel can use: the 17 features, `length`, and each trajectory signal.
pub fn columns() -> Vec<&'static str> {
    let mut c: Vec<&str> = FEATURE_NAMES.to_vec();
    c.push(LENGTH);
    c.extend(crate::Signal::ALL.iter().map(|s| s.name()));
    c
}

/// Whether `name` is one of [`columns`].
pub fn is_column(name: &str) -> bool {
    columns().contains(&name)
}

/// The feature families of the released sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureSet {
    /// All 17.
    D17,
    /// Indices 0–9, the entropy statistics (the paper's default).
    D10,
    /// max, se_sum, nll_sum.
    D3,
    /// se_sum alone.
    D1,
}

impl FeatureSet {
    /// Indices into the 17 features.
    pub fn indices(self) -> &'static [usize] {
        match self {
            Self::D17 => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
            Self::D10 => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            Self::D3 => &[2, 10, 13],
            Self::D1 => &[10],
        }
    }

    /// The chosen features of a full vector.
    pub fn select(self, all: &[f64; 17]) -> Vec<f64> {
        self.indices().iter().map(|&i| all[i]).collect()
    }
}

/// Entropy of one generated token from its recorded top-k `(id, log-prob)` entries and the
/// sampled token (`sampled`, log-prob `logprob`), added when it is not among them.
pub fn topk_entropy(top: &[(u32, f32)], sampled: u32, logprob: f32) -> f64 {
    let term = |lp: f32| {
        let lp = lp as f64;
        -lp.exp() * lp
    };
    let listed: f64 = top.iter().map(|&(_, lp)| term(lp)).sum();
    if top.iter().any(|&(id, _)| id == sampled) {
        listed
    } else {
        listed + term(logprob)
    }
}

/// Linear-interpolation quantile of sorted values (numpy's and torch's default).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The 17 features of a response with token entropies `h` and negative log-likelihoods `nll`
/// (equal lengths); `None` for an empty response.
pub fn features(h: &[f64], nll: &[f64]) -> Option<[f64; 17]> {
    assert_eq!(h.len(), nll.len(), "one entropy and one NLL per token");
    if h.is_empty() {
        return None;
    }
    let t = h.len() as f64;
    let mean = h.iter().sum::<f64>() / t;
    let moment = |p: i32| h.iter().map(|x| (x - mean).powi(p)).sum::<f64>() / t;
    let std = if h.len() > 1 {
        (moment(2) * t / (t - 1.0)).sqrt()
    } else {
        0.0
    };
    let mut sorted = h.to_vec();
    sorted.sort_by(f64::total_cmp);
    let max = |x: &[f64]| x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let nll_avg = nll.iter().sum::<f64>() / t;
    let weighted: Vec<f64> = nll.iter().map(|n| n * (n + 1e-8).ln()).collect();
    Some([
        mean,
        std,
        max(h),
        quantile(&sorted, 0.1),
        quantile(&sorted, 0.25),
        quantile(&sorted, 0.5),
        quantile(&sorted, 0.75),
        quantile(&sorted, 0.9),
        moment(3) / (std.powi(3) + 1e-8),
        moment(4) / (std.powi(4) + 1e-8),
        h.iter().sum(),
        nll_avg,
        max(nll),
        nll.iter().sum(),
        weighted.iter().sum(),
        max(&weighted),
        nll_avg.exp(),
    ])
}

/// The 17 features of a generated response: its sampled tokens, their log-probs and the top-k
/// entries recorded at each position. `None` for an empty response, or one recorded without top-k
/// log-probs (`entropy.top_logprobs = 0`).
pub fn response_features(tokens: &[u32], logprobs: &[f32], top: &[Vec<(u32, f32)>]) -> Option<[f64; 17]> {
    if top.len() != tokens.len() || top.iter().any(Vec::is_empty) {
        return None;
    }
    let h: Vec<f64> = tokens
        .iter()
        .zip(logprobs)
        .zip(top)
        .map(|((&id, &lp), top)| topk_entropy(top, id, lp))
        .collect();
    let nll: Vec<f64> = logprobs.iter().map(|&lp| -(lp as f64)).collect();
    features(&h, &nll)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_linearly() {
        let s = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 8.0);
        assert!((quantile(&s, 0.5) - 3.0).abs() < 1e-12);
        assert!((quantile(&s, 0.9) - 6.8).abs() < 1e-12);
    }

    #[test]
    fn family_indices_name_the_released_features() {
        let names = |s: FeatureSet| -> Vec<&str> { s.indices().iter().map(|&i| FEATURE_NAMES[i]).collect() };
        assert_eq!(names(FeatureSet::D3), ["max", "se_sum", "nll_sum"]);
        assert_eq!(names(FeatureSet::D1), ["se_sum"]);
        assert_eq!(names(FeatureSet::D10).last(), Some(&"kurtosis"));
        assert!(features(&[], &[]).is_none());
        assert!(
            response_features(&[1, 2], &[-0.1, -0.2], &[]).is_none(),
            "no top-k recorded"
        );
    }
}
