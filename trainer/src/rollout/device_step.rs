//! Sampling and per-token statistics on the device: one decode step's logits `[N, V]` never leave
//! it; one transaction brings back the chosen ids and their statistics (`[N]` each, plus `[N, k]`
//! top log-probs).
//!
//! The draw is Gumbel-max with **counter-based noise**: token v of a row at a step gets the uniform
//! `u = hash(key, v)`, where the row's key is a hash of (seed, prompt, sample, fork path,
//! position) ([`noise_key`]). So a completion depends on nothing but its own identity — not on the
//! rows that share its batch, on forks elsewhere, or on how work is split over workers — and the
//! same seed gives the same completion run to run. The hash uses 31-bit arithmetic (products of
//! values below 2^31 keep their low 31 bits under both i32 wrapping and i64 arithmetic), so every
//! backend's integer tensors compute the same bits; [`noise_uniform`] is its host reference.
//!
//! Top-k candidates come from k rounds of `argmax` + mask (ordered by construction, lowest id
//! first on ties like the host sampler; burn-flex has no `argtopk`, and `sort` runs on the host on
//! burn-cubecl). Top-p is applied inside the top-k candidates; a nucleus over the whole vocabulary
//! needs a full sort, so the device sampler asks for `top_k > 0` with `top_p < 1`.

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData, Transaction, activation::softmax};

use super::completion::ForkPoint;
use super::sampler::{SamplingParams, splitmix64};

/// 31 low bits.
const MASK31: u32 = 0x7FFF_FFFF;
/// Odd multipliers below 2^31 (murmur3's fmix32 shape, on 31 bits).
const MUL1: u32 = 0x045D_9F3B;
const MUL2: u32 = 0x2C1B_3C6D;

/// The noise key of a row at generated position `pos`: a hash of (seed, prompt's stream index,
/// sample, fork path, position), 31 bits.
pub fn noise_key(seed: u64, prompt: usize, sample: usize, forks: &[ForkPoint], pos: usize) -> u32 {
    let mut h = splitmix64(seed ^ 0x006E_6F69_7365_u64); // "noise": a stream apart from the host RNGs
    h = splitmix64(h ^ prompt as u64);
    h = splitmix64(h ^ sample as u64);
    for f in forks {
        h = splitmix64(h ^ (((f.pos as u64) << 32) | f.child as u64));
    }
    (splitmix64(h ^ pos as u64) >> 33) as u32
}

/// The 31-bit hash of (key, token) that the device computes for every token.
pub fn noise_hash(key: u32, token: u32) -> u32 {
    let mut x = (key ^ token) & MASK31;
    x ^= x >> 16;
    x = x.wrapping_mul(MUL1) & MASK31;
    x ^= x >> 13;
    x = x.wrapping_mul(MUL2) & MASK31;
    x ^ (x >> 16)
}

/// Host reference of the uniform draw of `token` under `key`, in (0, 1): the hash's top 24 bits.
pub fn noise_uniform(key: u32, token: u32) -> f32 {
    ((noise_hash(key, token) >> 7) as f32 + 0.5) / (1u32 << 24) as f32
}

/// Gumbel noise `−ln(−ln u)` `[N, C]` for candidate ids `ids [N, C]` under per-row keys `[N, 1]`.
pub fn gumbel<B: Backend>(keys: Tensor<B, 2, Int>, ids: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let c = |v: u32| (v as i64).elem::<B::IntElem>();
    let x = keys.expand(ids.dims()).bitwise_xor(ids).bitwise_and_scalar(c(MASK31));
    let x = x.clone().bitwise_xor(x.bitwise_right_shift_scalar(c(16)));
    let x = x.mul_scalar(MUL1 as i64).bitwise_and_scalar(c(MASK31));
    let x = x.clone().bitwise_xor(x.bitwise_right_shift_scalar(c(13)));
    let x = x.mul_scalar(MUL2 as i64).bitwise_and_scalar(c(MASK31));
    let x = x.clone().bitwise_xor(x.bitwise_right_shift_scalar(c(16)));
    let u = (x.bitwise_right_shift_scalar(c(7)).float() + 0.5) / (1u32 << 24) as f64;
    -(-u.log()).log()
}

/// The `k` largest entries of each row of `x [N, V]`, largest first (lowest id on ties): ids
/// `[N, k]`. k rounds of argmax, each masking the id it found.
pub fn top_ids<B: Backend>(x: Tensor<B, 2>, k: usize) -> Tensor<B, 2, Int> {
    let [n, v] = x.dims();
    let device = x.device();
    let vocab = Tensor::<B, 1, Int>::arange(0..v as i64, &device)
        .unsqueeze::<2>()
        .expand([n, v]);
    let mut x = x;
    let mut cols = Vec::with_capacity(k);
    for _ in 0..k {
        let id = x.clone().argmax(1); // [N, 1]
        let hit = vocab.clone().equal(id.clone().expand([n, v]));
        x = x.mask_fill(hit, f32::NEG_INFINITY);
        cols.push(id);
    }
    Tensor::cat(cols, 1)
}

/// What the device reports per row: the chosen token and the statistics of the model's own
/// distribution at `stats_temperature` (as [`super::sampler::StepStats`] does on the host).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStep {
    /// Chosen token per row `[N]`.
    pub tokens: Vec<u32>,
    /// Its log-prob under the stats distribution.
    pub logprob: Vec<f32>,
    /// Log-sum-exp of the stats distribution.
    pub logz: Vec<f32>,
    /// Entropy (nats).
    pub entropy: Vec<f32>,
    /// Self-certainty `logZ − mean(z/t) − ln V`.
    pub self_certainty: Vec<f32>,
    /// `top_logprobs` (id, log-prob) per row, most likely first.
    pub top: Vec<Vec<(u32, f32)>>,
}

/// Whether the device sampler can draw under `p` (a nucleus needs a candidate set).
pub fn supports(p: &SamplingParams) -> Result<(), String> {
    if p.temperature > 0.0 && p.top_p < 1.0 && p.top_k == 0 {
        return Err("sampler = \"device\" applies top_p inside top_k: set top_k > 0 (e.g. 50) or top_p = 1".into());
    }
    Ok(())
}

/// Draws one token per row of `logits [N, V]` under `p` with the noise keys `keys [N]`, and
/// computes the statistics, reading everything back in one transaction.
pub fn device_step<B: Backend>(logits: Tensor<B, 2>, keys: &[u32], p: &SamplingParams) -> DeviceStep {
    let [n, v] = logits.dims();
    // Statistics of softmax(z / t_stats): logZ [N, 1], log-probs [N, V].
    let s = logits.clone() / p.stats_temperature;
    let max = s.clone().max_dim(1);
    let logz = max.clone() + (s.clone() - max).exp().sum_dim(1).log();
    let logp = s.clone() - logz.clone();
    let entropy = -(logp.clone().exp() * logp.clone()).sum_dim(1);
    let self_certainty = logz.clone() - s.mean_dim(1) - (v as f64).ln();
    let tokens = draw(logits, keys, p); // [N, 1]
    let chosen = logp.clone().gather(1, tokens.clone());
    let k = p.top_logprobs.min(v);
    let mut tx = Transaction::default()
        .register(tokens)
        .register(chosen)
        .register(logz)
        .register(entropy)
        .register(self_certainty);
    if k > 0 {
        let ids = top_ids(logp.clone(), k);
        tx = tx.register(logp.gather(1, ids.clone())).register(ids);
    }
    let mut data = tx.execute().into_iter();
    let mut next_f32 = || {
        data.next()
            .expect("registered")
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32")
    };
    let tokens: Vec<u32> = next_f32().into_iter().map(|t| t as u32).collect();
    let (logprob, logz, entropy, self_certainty) = (next_f32(), next_f32(), next_f32(), next_f32());
    let top = if k > 0 {
        let (vals, ids) = (next_f32(), next_f32());
        (0..n)
            .map(|r| (0..k).map(|j| (ids[r * k + j] as u32, vals[r * k + j])).collect())
            .collect()
    } else {
        vec![vec![]; n]
    };
    DeviceStep {
        tokens,
        logprob,
        logz,
        entropy,
        self_certainty,
        top,
    }
}

/// The chosen ids `[N, 1]`: argmax at temperature 0, else Gumbel-max over the full vocabulary or
/// over the top-k candidates (with the nucleus cut inside them).
fn draw<B: Backend>(logits: Tensor<B, 2>, keys: &[u32], p: &SamplingParams) -> Tensor<B, 2, Int> {
    let [n, v] = logits.dims();
    assert_eq!(keys.len(), n, "one noise key per row");
    if p.temperature == 0.0 {
        return logits.argmax(1);
    }
    let device = logits.device();
    let keys: Vec<i64> = keys.iter().map(|&k| k as i64).collect();
    let keys = Tensor::<B, 2, Int>::from_data(TensorData::new(keys, [n, 1]), &device);
    let z = logits / p.temperature;
    if p.top_k == 0 {
        let ids = Tensor::<B, 1, Int>::arange(0..v as i64, &device)
            .unsqueeze::<2>()
            .expand([n, v]);
        return (z + gumbel(keys, ids)).argmax(1);
    }
    let ids = top_ids(z.clone(), p.top_k.min(v)); // [N, k], most likely first
    let mut cand = z.gather(1, ids.clone());
    if p.top_p < 1.0 {
        // keep candidate j while the mass before it is below top_p (the host sampler's rule)
        let probs = softmax(cand.clone(), 1);
        let before = probs.clone().cumsum(1) - probs;
        cand = cand.mask_fill(before.greater_equal_elem(p.top_p), f32::NEG_INFINITY);
    }
    let j = (cand + gumbel(keys, ids.clone())).argmax(1);
    ids.gather(1, j)
}
