//! Per-row token statistics and sampling on the host, from one row of logits `[V]`.
//!
//! Statistics (sampled-token log-prob, full-vocabulary entropy, top-k log-probs) are computed in f64
//! from the logits scaled by `stats_temperature` (1.0 = the model's raw distribution, METHODS §0);
//! sampling uses its own `temperature`, `top_k`, `top_p`. Each completion owns a seeded RNG, so a
//! completion does not depend on which other rows share its batch.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How to draw the next token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingParams {
    /// Softmax temperature for sampling; 0 means greedy (argmax, lowest id on ties).
    pub temperature: f64,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Nucleus: keep the smallest set of tokens whose probability reaches p (1.0 = off).
    pub top_p: f64,
    /// Temperature of the distribution whose log-probs/entropies are reported (1.0 = raw model).
    pub stats_temperature: f64,
    /// How many top log-probs to return per generated token.
    pub top_logprobs: usize,
    /// HF-style repetition penalty over the prompt and the tokens generated so far (1.0 = off):
    /// a seen token's logit `z` becomes `z / penalty` if positive, `z · penalty` otherwise. Applied
    /// before temperature/top-k/top-p, as `transformers` orders its processors.
    pub repetition_penalty: f64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            stats_temperature: 1.0,
            top_logprobs: 20,
            repetition_penalty: 1.0,
        }
    }
}

impl SamplingParams {
    /// Checks ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(format!("temperature must be >= 0, got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(self.stats_temperature > 0.0 && self.stats_temperature.is_finite()) {
            return Err(format!("stats_temperature must be > 0, got {}", self.stats_temperature));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(format!(
                "repetition_penalty must be > 0, got {}",
                self.repetition_penalty
            ));
        }
        Ok(())
    }
}

/// What one step reports about the token it chose.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStep {
    /// The chosen token.
    pub token: u32,
    /// Its log-probability under the stats distribution.
    pub logprob: f32,
    /// Entropy (nats) of the stats distribution over the full vocabulary.
    pub entropy: f32,
    /// Self-certainty of the stats distribution (see [`RowStats`]).
    pub self_certainty: f32,
    /// The `top_logprobs` most likely tokens with their log-probs, most likely first.
    pub top: Vec<(u32, f32)>,
}

/// Statistics of one distribution `p = softmax(z / t)` over the full vocabulary, in f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowStats {
    /// `log Σ_v exp(z_v / t)`.
    pub logz: f64,
    /// Entropy `H = logZ − Σ p·(z/t)` (nats).
    pub entropy: f64,
    /// Self-certainty `KL(U‖p) = −(1/V) Σ_v ln(V·p_v) = logZ − mean(z/t) − ln V` (METHODS §0).
    pub self_certainty: f64,
}

/// Log-sum-exp, entropy and self-certainty of `softmax(z / t)` in one pass over the row.
pub fn row_stats(logits: &[f32], t: f64) -> RowStats {
    row_stats_with(logits, t, |_| ())
}

/// [`row_stats`], handing each exponential `exp(z_v / t − max)` to `each` in id order.
#[inline(always)]
fn row_stats_with(logits: &[f32], t: f64, mut each: impl FnMut(f64)) -> RowStats {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &z| m.max(z as f64 / t));
    let (mut sum, mut sum_pz, mut sum_z) = (0.0, 0.0, 0.0);
    for &z in logits {
        let zs = z as f64 / t;
        let e = (zs - max).exp();
        each(e);
        sum += e;
        sum_pz += e * zs;
        sum_z += zs;
    }
    let logz = max + sum.ln();
    let v = logits.len() as f64;
    RowStats {
        logz,
        entropy: logz - sum_pz / sum,
        self_certainty: logz - sum_z / v - v.ln(),
    }
}

/// Indices of the `k` largest logits, largest first (ties: lower id first; `f32::total_cmp`).
pub fn top_indices(logits: &[f32], k: usize) -> Vec<usize> {
    let k = k.min(logits.len());
    if k == 0 {
        return vec![]; // training rollouts ask for no top log-probs
    }
    if k * 64 <= logits.len() {
        return top_few(logits, k);
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let cmp = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_by(cmp);
    idx.truncate(k);
    idx
}

/// [`top_indices`] for small k: one pass keeping the best k in order (most logits fail the first
/// comparison), instead of a vocabulary-sized index array and a partial sort.
fn top_few(logits: &[f32], k: usize) -> Vec<usize> {
    use std::cmp::Ordering::{Greater, Less};
    let mut top: Vec<usize> = Vec::with_capacity(k + 1);
    for (i, z) in logits.iter().enumerate() {
        if top.len() == k && z.total_cmp(&logits[top[k - 1]]) != Greater {
            continue; // not above the k-th (an equal logit has a higher id: it loses the tie)
        }
        let at = top.partition_point(|&j| logits[j].total_cmp(z) != Less);
        top.insert(at, i);
        top.truncate(k);
    }
    top
}

/// The statistics of one step's distribution, computed from the model's own logits before any
/// logits processor (METHODS §0): what every signal (EDIS, Sentinel, DeepConf) reads.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// Log-sum-exp, entropy and self-certainty of the stats distribution.
    pub row: RowStats,
    /// Temperature of the stats distribution.
    pub temperature: f64,
    /// The `top_logprobs` most likely tokens with their log-probs, most likely first.
    pub top: Vec<(u32, f32)>,
}

impl StepStats {
    /// Statistics of `softmax(logits / p.stats_temperature)`.
    pub fn of(logits: &[f32], p: &SamplingParams) -> Self {
        Self::with_row(logits, p, row_stats(logits, p.stats_temperature))
    }

    /// The statistics around `row` (computed from `logits` at `p.stats_temperature`).
    fn with_row(logits: &[f32], p: &SamplingParams, row: RowStats) -> Self {
        let lp = |i: usize| (logits[i] as f64 / p.stats_temperature - row.logz) as f32;
        let top = top_indices(logits, p.top_logprobs)
            .into_iter()
            .map(|i| (i as u32, lp(i)))
            .collect();
        Self {
            row,
            temperature: p.stats_temperature,
            top,
        }
    }

    /// Log-prob of `token` under the stats distribution (`logits` are the ones the stats came from).
    pub fn logprob(&self, logits: &[f32], token: u32) -> f32 {
        (logits[token as usize] as f64 / self.temperature - self.row.logz) as f32
    }

    /// The record of choosing `token`.
    pub fn step(&self, logits: &[f32], token: u32) -> TokenStep {
        TokenStep {
            token,
            logprob: self.logprob(logits, token),
            entropy: self.row.entropy as f32,
            self_certainty: self.row.self_certainty as f32,
            top: self.top.clone(),
        }
    }
}

/// Chooses a token from `logits` and reports its statistics (both from the same logits).
pub fn step(logits: &[f32], p: &SamplingParams, rng: &mut ChaCha8Rng) -> TokenStep {
    let token = choose(logits, p, rng) as u32;
    StepStats::of(logits, p).step(logits, token)
}

thread_local! {
    /// One row's exponentials for [`stats_and_choose`] (`[V]` f64; reused across steps).
    static WEIGHTS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`StepStats::of`] and [`choose`] of one row, as a pair. Where both distributions are the raw
/// model's (temperature 1 for statistics and sampling, no top-k, no nucleus) the draw reuses the
/// statistics' exponentials: dividing by 1.0 is exact, so they are bitwise the weights that
/// [`choose_full`] recomputes (and their sum its total) — the same token and RNG state, without its
/// max pass and its second and third passes of f64 `exp` over the vocabulary.
pub fn stats_and_choose(logits: &[f32], p: &SamplingParams, rng: &mut ChaCha8Rng) -> (StepStats, usize) {
    let raw = p.temperature == 1.0 && p.stats_temperature == 1.0 && p.top_k == 0 && p.top_p >= 1.0;
    if !raw {
        let token = choose(logits, p, rng);
        return (StepStats::of(logits, p), token);
    }
    WEIGHTS.with_borrow_mut(|w| {
        w.clear();
        let row = row_stats_with(logits, 1.0, |e| w.push(e));
        let total: f64 = w.iter().sum();
        let token = walk(w.iter().copied(), rng.random::<f64>() * total);
        (StepStats::with_row(logits, p, row), token)
    })
}

/// HF's repetition penalty, in place: every token id in `seen` (duplicates count once).
pub fn apply_repetition_penalty(logits: &mut [f32], seen: impl IntoIterator<Item = u32>, penalty: f64) {
    if penalty == 1.0 {
        return;
    }
    let mut done = vec![false; logits.len()];
    for t in seen {
        let (i, p) = (t as usize, penalty as f32);
        if i < logits.len() && !done[i] {
            done[i] = true;
            logits[i] = if logits[i] < 0.0 { logits[i] * p } else { logits[i] / p };
        }
    }
}

/// Draws a token from `logits` with the sampling temperature, top-k and top-p of `p` (greedy at
/// temperature 0). The repetition penalty is the caller's (it needs the context).
pub fn choose(logits: &[f32], p: &SamplingParams, rng: &mut ChaCha8Rng) -> usize {
    if p.temperature == 0.0 {
        return top_indices(logits, 1)[0];
    }
    if p.top_k == 0 && p.top_p >= 1.0 {
        return choose_full(logits, p.temperature, rng);
    }
    // Candidate set: the top-k, or all tokens sorted by logit for a nucleus cut.
    let mut cand: Vec<usize> = if p.top_k > 0 {
        top_indices(logits, p.top_k)
    } else {
        top_indices(logits, logits.len())
    };
    let max = cand.iter().fold(f64::NEG_INFINITY, |m, &i| m.max(logits[i] as f64));
    let mut w: Vec<f64> = cand
        .iter()
        .map(|&i| ((logits[i] as f64 - max) / p.temperature).exp())
        .collect();
    if p.top_p < 1.0 {
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        let mut keep = w.len();
        for (j, x) in w.iter().enumerate() {
            acc += x / total;
            if acc >= p.top_p {
                keep = j + 1;
                break;
            }
        }
        cand.truncate(keep);
        w.truncate(keep);
    }
    let total: f64 = w.iter().sum();
    cand[walk(w.iter().copied(), rng.random::<f64>() * total)]
}

/// [`choose`] over the whole vocabulary in id order (no top-k, no nucleus): the same weights,
/// sums and walk as the candidate path, without its vocabulary-sized index and weight vectors
/// (the weights are recomputed in the walk, which stops at the drawn token).
fn choose_full(logits: &[f32], temperature: f64, rng: &mut ChaCha8Rng) -> usize {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &z| m.max(z as f64));
    let weight = |z: f32| ((z as f64 - max) / temperature).exp();
    let total: f64 = logits.iter().map(|&z| weight(z)).sum();
    walk(logits.iter().map(|&z| weight(z)), rng.random::<f64>() * total)
}

/// The inverse-CDF walk over weights in id order: the first index where the running remainder of
/// `u` (uniform on [0, total)) drops below zero; the last index if rounding leaves none.
fn walk(weights: impl ExactSizeIterator<Item = f64>, mut u: f64) -> usize {
    let last = weights.len().checked_sub(1).expect("non-empty vocabulary");
    for (j, x) in weights.enumerate() {
        u -= x;
        if u < 0.0 {
            return j;
        }
    }
    last
}

/// The RNG of one completion: a pure function of (seed, prompt index, sample index).
pub fn row_rng(seed: u64, prompt: usize, sample: usize) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(((prompt as u64) << 32) | sample as u64);
    r
}

/// SplitMix64's finaliser: a bijective scramble of 64 bits.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Strategy;

    #[test]
    fn entropy_of_uniform_is_ln_v() {
        let st = row_stats(&[0.5; 7], 1.0);
        assert!((st.entropy - 7f64.ln()).abs() < 1e-12);
        assert!(st.self_certainty.abs() < 1e-12, "uniform: KL(U‖p) = 0");
    }

    #[test]
    fn entropy_matches_direct_formula() {
        let z = [1.0f32, -2.0, 0.3, 4.0, 4.0];
        let m = z.iter().map(|&x| (x as f64).exp()).sum::<f64>();
        let direct: f64 = z
            .iter()
            .map(|&x| {
                let p = (x as f64).exp() / m;
                -p * p.ln()
            })
            .sum();
        assert!((row_stats(&z, 1.0).entropy - direct).abs() < 1e-12);
        // self-certainty straight from its definition −(1/V) Σ ln(V·p_v)
        let v = z.len() as f64;
        let sc: f64 = -z.iter().map(|&x| (v * (x as f64).exp() / m).ln()).sum::<f64>() / v;
        assert!((row_stats(&z, 1.0).self_certainty - sc).abs() < 1e-12);
    }

    proptest::proptest! {
        /// Entropy lies in [0, ln V] and self-certainty (a KL divergence) is ≥ 0, for any logits
        /// and temperature.
        #[test]
        fn entropy_in_range_and_self_certainty_nonnegative(
            z in proptest::collection::vec(-30.0f32..30.0, 1..300),
            t in 0.05f64..5.0,
        ) {
            let st = row_stats(&z, t);
            let ln_v = (z.len() as f64).ln();
            proptest::prop_assert!(st.entropy >= -1e-9 && st.entropy <= ln_v + 1e-9, "H = {} not in [0, {}]", st.entropy, ln_v);
            proptest::prop_assert!(st.self_certainty >= -1e-9, "SC = {}", st.self_certainty);
        }
    }

    /// The sort-based selection [`top_indices`] uses for large k, as the reference.
    fn top_by_sort(z: &[f32], k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..z.len()).collect();
        idx.sort_by(|a, b| z[*b].total_cmp(&z[*a]).then(a.cmp(b)));
        idx.truncate(k);
        idx
    }

    /// The candidate-vector walk that [`choose_full`] replaced, as the reference.
    fn choose_by_vectors(z: &[f32], t: f64, rng: &mut ChaCha8Rng) -> usize {
        let max = z.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let w: Vec<f64> = z.iter().map(|&x| ((x as f64 - max) / t).exp()).collect();
        let mut u = rng.random::<f64>() * w.iter().sum::<f64>();
        for (j, x) in w.iter().enumerate() {
            u -= x;
            if u < 0.0 {
                return j;
            }
        }
        z.len() - 1
    }

    proptest::proptest! {
        /// The one-pass top-k equals a full sort, ties (few distinct values) included.
        #[test]
        fn top_few_equals_a_full_sort(
            z in proptest::collection::vec((-4i32..4).prop_map(|v| v as f32 * 0.5), 64..2000),
            k in 1usize..20,
        ) {
            proptest::prop_assert_eq!(top_few(&z, k), top_by_sort(&z, k));
        }

        /// The full-vocabulary draw takes the same token and leaves the RNG in the same state.
        #[test]
        fn full_draw_equals_the_vector_walk(
            z in proptest::collection::vec(-8.0f32..8.0, 1..500),
            t in 0.2f64..2.0,
            seed in 0u64..1000,
        ) {
            let (mut a, mut b) = (row_rng(seed, 0, 0), row_rng(seed, 0, 0));
            proptest::prop_assert_eq!(choose_full(&z, t, &mut a), choose_by_vectors(&z, t, &mut b));
            proptest::prop_assert_eq!(a.random::<u64>(), b.random::<u64>());
        }
    }

    proptest::proptest! {
        /// Statistics and draw together equal each alone — bitwise, with the same RNG state after
        /// — at the raw temperature (exponentials shared) and off it (each computed alone).
        #[test]
        fn stats_and_choose_equal_each_alone(
            z in proptest::collection::vec(-12.0f32..12.0, 1..700),
            raw in proptest::bool::ANY,
            t in 0.3f64..1.7,
            top_k in 0usize..4,
            seed in 0u64..1000,
        ) {
            let p = if raw {
                SamplingParams::default()
            } else {
                SamplingParams { temperature: t, stats_temperature: 1.3, top_k, top_logprobs: 3, ..Default::default() }
            };
            let (mut a, mut b) = (row_rng(seed, 1, 2), row_rng(seed, 1, 2));
            let (stats, token) = stats_and_choose(&z, &p, &mut a);
            proptest::prop_assert_eq!(token, choose(&z, &p, &mut b));
            let alone = StepStats::of(&z, &p);
            proptest::prop_assert_eq!(stats.row.logz.to_bits(), alone.row.logz.to_bits());
            proptest::prop_assert_eq!(stats.row.entropy.to_bits(), alone.row.entropy.to_bits());
            proptest::prop_assert_eq!(stats.row.self_certainty.to_bits(), alone.row.self_certainty.to_bits());
            proptest::prop_assert_eq!(stats.top, alone.top);
            proptest::prop_assert_eq!(a.random::<u64>(), b.random::<u64>());
        }
    }

    #[test]
    fn greedy_picks_argmax_lowest_id_on_tie() {
        let p = SamplingParams {
            temperature: 0.0,
            ..Default::default()
        };
        let s = step(&[0.0, 3.0, 3.0, 1.0], &p, &mut row_rng(0, 0, 0));
        assert_eq!(s.token, 1);
        assert_eq!(s.top[0].0, 1);
        assert_eq!(s.top[1].0, 2);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_tiny_is_greedy() {
        let z = [0.1f32, 0.2, 2.0, 0.3];
        for p in [
            SamplingParams {
                top_k: 1,
                ..Default::default()
            },
            SamplingParams {
                top_p: 1e-6,
                ..Default::default()
            },
        ] {
            for s in 0..20 {
                assert_eq!(step(&z, &p, &mut row_rng(s, 0, 0)).token, 2);
            }
        }
    }

    #[test]
    fn sampling_frequencies_follow_softmax() {
        // p = softmax([0, ln 3]) = [0.25, 0.75]
        let z = [0.0f32, 3f32.ln()];
        let p = SamplingParams::default();
        let mut rng = row_rng(7, 0, 0);
        let ones = (0..20000).filter(|_| step(&z, &p, &mut rng).token == 1).count();
        let f = ones as f64 / 20000.0;
        assert!((f - 0.75).abs() < 0.015, "frequency {f}");
    }

    #[test]
    fn row_rngs_differ_by_stream() {
        let a: u64 = row_rng(1, 0, 0).random();
        let b: u64 = row_rng(1, 0, 1).random();
        let c: u64 = row_rng(1, 0, 0).random();
        assert_ne!(a, b);
        assert_eq!(a, c);
    }
}
