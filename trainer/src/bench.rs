//! `entrl bench`: rollout, scoring and training-step throughput, reported next to the machine's own
//! matmul speed.
//!
//! FLOPs per token are counted as 2 × (weights touched by matmuls: every projection plus the
//! output head); attention-score FLOPs are left out (small at these lengths), so achieved GFLOP/s
//! is a slight underestimate.

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use serde::Serialize;

use crate::model::{ModelConfig, Transformer};
use crate::rollout::{RolloutConfig, SamplingParams, generate};
use crate::scoring::{right_padded, score_logprobs, score_tokens};

/// One benchmark line.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Model label.
    pub model: String,
    /// Parameters.
    pub params: usize,
    /// "rollout" or "scoring".
    pub phase: String,
    /// Tokens generated or scored.
    pub tokens: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Tokens per second.
    pub tokens_per_s: f64,
    /// Achieved matmul GFLOP/s.
    pub gflops: f64,
}

impl BenchResult {
    /// A line for `tokens` processed in `seconds`, with `flops` matmul FLOPs in that time.
    fn measured(label: &str, c: &ModelConfig, phase: String, tokens: usize, seconds: f64, flops: f64) -> Self {
        Self {
            model: label.into(),
            params: c.num_params(),
            phase,
            tokens,
            seconds,
            tokens_per_s: tokens as f64 / seconds,
            gflops: flops / seconds / 1e9,
        }
    }
}

/// `rows` deterministic token rows of length `len`: id `(a + b·i + c·row) mod vocab` at position i.
fn synthetic_rows(rows: usize, len: usize, vocab: usize, [a, b, c]: [u32; 3]) -> Vec<Vec<u32>> {
    let v = vocab as u32;
    (0..rows)
        .map(|r| (0..len).map(|i| (a + b * i as u32 + c * r as u32) % v).collect())
        .collect()
}

/// Matmul FLOPs per token (forward).
pub fn flops_per_token(c: &ModelConfig) -> f64 {
    let (d, f, hd) = (c.hidden_size, c.intermediate_size, c.head_dim());
    let (nh, nkv) = (c.num_attention_heads, c.kv_heads());
    let per_layer = d * nh * hd * 2 + 2 * d * nkv * hd + 3 * d * f;
    2.0 * (c.num_hidden_layers * per_layer + c.vocab_size * d) as f64
}

/// Measured GFLOP/s of an `n × n` f32 matmul on this backend (best of 3 after a warm-up).
pub fn matmul_gflops<B: Backend>(n: usize, device: &B::Device) -> f64 {
    let a = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let b = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let run = || {
        let t = Instant::now();
        let c = a.clone().matmul(b.clone());
        let _ = c.into_data(); // forces completion on async backends
        t.elapsed().as_secs_f64()
    };
    run();
    let best = (0..3).map(|_| run()).fold(f64::INFINITY, f64::min);
    2.0 * (n as f64).powi(3) / best / 1e9
}

/// Rollout throughput: `prompts` prompts of `prompt_len` tokens, `group` samples each, forced to
/// run exactly `new_tokens` tokens (no EOS).
pub fn bench_rollout<B: Backend>(
    label: &str,
    model: &Transformer<B>,
    prompts: usize,
    prompt_len: usize,
    group: usize,
    new_tokens: usize,
    policy: crate::rollout::DecodePolicy,
) -> BenchResult {
    let c = model.config();
    let ps = synthetic_rows(prompts, prompt_len, c.vocab_size, [7, 31, 101]);
    let cfg = RolloutConfig {
        group_size: group,
        max_new_tokens: new_tokens,
        sampling: SamplingParams::default(),
        eos_ids: vec![],
        seed: 0,
        first_prompt_index: 0,
        policy,
    };
    generate(
        model,
        &ps[..1],
        &RolloutConfig {
            max_new_tokens: 2,
            ..cfg.clone()
        },
    ); // warm-up
    let t = Instant::now();
    let out = generate(model, &ps, &cfg);
    let secs = t.elapsed().as_secs_f64();
    let toks: usize = out.iter().map(|c| c.tokens.len()).sum();
    // prompt prefill counted too for FLOPs
    let flops = flops_per_token(c) * (toks + prompts * prompt_len) as f64;
    BenchResult::measured(label, c, format!("rollout G={group}"), toks, secs, flops)
}

/// Scoring throughput on `[batch, len]` tokens.
pub fn bench_scoring<B: Backend>(label: &str, model: &Transformer<B>, batch: usize, len: usize) -> BenchResult {
    let c = model.config();
    let rows = synthetic_rows(batch, len, c.vocab_size, [3, 17, 29]);
    let device = model.embed_tokens.val().device();
    let run = || {
        let t = Instant::now();
        let s = score_tokens(model, right_padded::<B>(&rows, 0, &device), &vec![0; batch], 1.0, 64);
        let _ = s.entropies.into_data();
        t.elapsed().as_secs_f64()
    };
    run();
    let secs = run();
    let toks = batch * len;
    let flops = flops_per_token(c) * toks as f64;
    BenchResult::measured(label, c, format!("scoring {batch}x{len}"), toks, secs, flops)
}

/// Training-step throughput: forward, backward and AdamW on `[batch, len]` random tokens, the
/// loss (mean NLL) on every position — PyTorch's usual eager benchmark step. One warm-up step,
/// then the best of `steps` timed steps. FLOPs counted as 3 × forward (forward + backward).
pub fn bench_train<AB: burn::tensor::backend::AutodiffBackend>(
    label: &str,
    model: Transformer<AB>,
    batch: usize,
    len: usize,
    steps: usize,
) -> BenchResult {
    use crate::optim::{AdamW, AdamWConfig, GradAccum};
    let c = model.config().clone();
    let rows = synthetic_rows(batch, len, c.vocab_size, [5, 37, 53]);
    let device = model.embed_tokens.val().device();
    let mut opt = AdamW::<AB::InnerBackend>::new(AdamWConfig::default());
    let mut model = Some(model);
    let mut step = || {
        let t = Instant::now();
        let m = model.take().expect("model");
        let logprobs = score_logprobs(&m, right_padded::<AB>(&rows, 0, &device), &vec![0; batch], 1.0, 64);
        let n: usize = logprobs.dims().iter().product();
        let loss = logprobs.sum().neg() / n as f64; // [1]: mean NLL over all positions
        let grads = loss.backward();
        let mut acc = GradAccum::default();
        acc.add(&m, &grads);
        model = Some(opt.step(m, &acc, 1e-5, 1.0));
        t.elapsed().as_secs_f64()
    };
    step();
    let secs = (0..steps.max(1)).map(|_| step()).fold(f64::INFINITY, f64::min);
    let toks = batch * len;
    let flops = 3.0 * flops_per_token(&c) * toks as f64;
    BenchResult::measured(label, &c, format!("train {batch}x{len}"), toks, secs, flops)
}
