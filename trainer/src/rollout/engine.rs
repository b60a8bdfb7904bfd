//! Batched, KV-cached generation of G completions per prompt.
//!
//! Prompts are left-padded to a common length so every row decodes in lockstep (one cache length
//! for all rows, per-row rotary positions and key masks). Each prompt is prefilled once; its cache
//! rows are then repeated for the G samples of its group. After every step, finished rows are
//! dropped from the batch (and from the cache), so they stop costing compute.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::sampler::{SamplingParams, row_rng, step};
use crate::model::transformer::{Rope, attention_bias};
use crate::model::{KvCache, Transformer};

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token was generated (it is included in `tokens`).
    Eos,
    /// `max_new_tokens` was reached (truncated).
    Length,
}

/// One generated completion with per-token statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Which prompt it answers.
    pub prompt_index: usize,
    /// Which sample of that prompt's group.
    pub sample_index: usize,
    /// Generated ids (EOS included when it ended on one).
    pub tokens: Vec<u32>,
    /// Log-prob of each generated token.
    pub logprobs: Vec<f32>,
    /// Full-vocabulary entropy (nats) at each generated position.
    pub entropies: Vec<f32>,
    /// Self-certainty `KL(U‖p_t)` at each generated position.
    pub self_certainty: Vec<f32>,
    /// Top log-probs at each position, most likely first.
    pub top_logprobs: Vec<Vec<(u32, f32)>>,
    /// How it ended.
    pub finish_reason: FinishReason,
}

/// Everything a rollout needs besides the model and prompts.
#[derive(Debug, Clone)]
pub struct RolloutConfig {
    /// Samples per prompt (G).
    pub group_size: usize,
    /// Longest completion.
    pub max_new_tokens: usize,
    /// Sampling and statistics options.
    pub sampling: SamplingParams,
    /// Ids that end a completion.
    pub eos_ids: Vec<u32>,
    /// Seed; completion (p, g) uses the RNG stream (seed, first_prompt_index + p, g).
    pub seed: u64,
    /// Stream index of the first prompt, so a slice of a larger prompt set samples exactly as it
    /// would inside the whole set.
    pub first_prompt_index: usize,
}

/// A hook between the forward pass and sampling: may rewrite a row's logits in place (EM-INF,
/// constrained decoding). `row` identifies (prompt, sample).
pub trait LogitsProcessor {
    /// Rewrites `logits [V]` of completion (prompt, sample) at generated position `pos`.
    fn process(&mut self, prompt: usize, sample: usize, pos: usize, logits: &mut [f32]);
}

/// The identity processor.
pub struct NoProcessor;
impl LogitsProcessor for NoProcessor {
    fn process(&mut self, _: usize, _: usize, _: usize, _: &mut [f32]) {}
}

fn to_host<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 logits")
}

/// Generates `group_size` completions for each prompt. Output order: prompt-major, then sample.
pub fn generate<B: Backend>(model: &Transformer<B>, prompts: &[Vec<u32>], cfg: &RolloutConfig) -> Vec<Completion> {
    generate_with(model, prompts, cfg, &mut NoProcessor)
}

/// [`generate`] with a logits processor.
pub fn generate_with<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    cfg: &RolloutConfig,
    proc: &mut dyn LogitsProcessor,
) -> Vec<Completion> {
    assert!(prompts.iter().all(|p| !p.is_empty()), "generate: empty prompt");
    if prompts.is_empty() || cfg.group_size == 0 {
        return vec![];
    }
    let mc = model.config();
    let device = model.embed_tokens.val().device();
    let (np, g) = (prompts.len(), cfg.group_size);
    let lmax = prompts.iter().map(Vec::len).max().expect("non-empty");

    // Prefill: [P, Lmax], left-padded with id 0 (masked, so its value is irrelevant).
    let pad: Vec<usize> = prompts.iter().map(|p| lmax - p.len()).collect();
    let flat: Vec<i64> = prompts
        .iter()
        .zip(&pad)
        .flat_map(|(p, &k)| std::iter::repeat_n(0, k).chain(p.iter().map(|&t| t as i64)))
        .collect();
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [np, lmax]), &device);
    let positions: Vec<Vec<usize>> = pad
        .iter()
        .map(|&k| (0..lmax).map(|t| t.saturating_sub(k)).collect())
        .collect();
    let rope = Rope::new(&positions, mc.head_dim(), mc.rope_theta, &device);
    let bias = attention_bias(&pad, lmax, lmax, &device);
    let mut cache = KvCache::new(
        mc.num_hidden_layers,
        np,
        mc.kv_heads(),
        lmax + cfg.max_new_tokens,
        mc.head_dim(),
        &device,
    );
    let hidden = model.forward_hidden(tokens, &rope, &bias, Some(&mut cache));
    let last = hidden.narrow(1, lmax - 1, 1); // only the last position's logits are needed
    let prompt_logits = to_host(model.logits(last).squeeze_dim::<2>(1)); // [P·V]
    let vocab = prompt_logits.len() / np;

    // Expand to P·G rows: row r answers prompt r / G.
    let expand: Vec<usize> = (0..np * g).map(|r| r / g).collect();
    cache.select_rows(&expand);
    let mut logits: Vec<f32> = expand
        .iter()
        .flat_map(|&p| prompt_logits[p * vocab..(p + 1) * vocab].iter().copied())
        .collect();
    let mut rows: Vec<usize> = (0..np * g).collect(); // active batch row -> completion index
    let mut row_pad: Vec<usize> = expand.iter().map(|&p| pad[p]).collect();
    let mut rngs: Vec<_> = (0..np * g)
        .map(|r| row_rng(cfg.seed, cfg.first_prompt_index + r / g, r % g))
        .collect();
    let mut out: Vec<Completion> = (0..np * g)
        .map(|r| Completion {
            prompt_index: r / g,
            sample_index: r % g,
            tokens: vec![],
            logprobs: vec![],
            entropies: vec![],
            self_certainty: vec![],
            top_logprobs: vec![],
            finish_reason: FinishReason::Length,
        })
        .collect();

    for pos in 0..cfg.max_new_tokens {
        let mut next = Vec::with_capacity(rows.len());
        let mut keep = Vec::with_capacity(rows.len());
        for (b, &r) in rows.iter().enumerate() {
            let row = &mut logits[b * vocab..(b + 1) * vocab];
            proc.process(r / g, r % g, pos, row);
            let s = step(row, &cfg.sampling, &mut rngs[r]);
            let c = &mut out[r];
            c.tokens.push(s.token);
            c.logprobs.push(s.logprob);
            c.entropies.push(s.entropy);
            c.self_certainty.push(s.self_certainty);
            c.top_logprobs.push(s.top);
            if cfg.eos_ids.contains(&s.token) {
                c.finish_reason = FinishReason::Eos;
            } else if pos + 1 < cfg.max_new_tokens {
                keep.push(b);
                next.push(s.token as i64);
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < rows.len() {
            cache.select_rows(&keep);
            rows = keep.iter().map(|&b| rows[b]).collect();
            row_pad = keep.iter().map(|&b| row_pad[b]).collect();
        }
        // Decode one token for each active row: [A, 1] at cache position `len`.
        let a = rows.len();
        let s_total = cache.len() + 1;
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(next, [a, 1]), &device);
        let positions: Vec<Vec<usize>> = row_pad.iter().map(|&k| vec![cache.len() - k]).collect();
        let rope = Rope::new(&positions, mc.head_dim(), mc.rope_theta, &device);
        let bias = attention_bias(&row_pad, 1, s_total, &device);
        let hidden = model.forward_hidden(tokens, &rope, &bias, Some(&mut cache));
        logits = to_host(model.logits(hidden).squeeze_dim::<2>(1));
    }
    out
}
