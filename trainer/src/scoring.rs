//! The one teacher-forced scoring pass every objective shares: per-token log-probs and entropies.
//!
//! Output position t scores `tokens[:, t+1]` from the distribution after `tokens[:, ..=t]`. The
//! output head, log-softmax and entropy run in chunks of T so that, outside autodiff, at most one
//! `[B, chunk, V]` block of logits is alive at a time (the `[B, T, V]` tensor is never built).

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::model::Transformer;
use crate::model::transformer::{Rope, attention_bias};

/// Per-token statistics `[B, T-1]`: column t describes the prediction of token t+1.
#[derive(Debug, Clone)]
pub struct TokenStats<B: Backend> {
    /// log π(tokens[t+1] | tokens[..=t]).
    pub logprobs: Tensor<B, 2>,
    /// Full-vocabulary entropy (nats) of that distribution.
    pub entropies: Tensor<B, 2>,
}

/// Scores `tokens [B, T]` whose row b starts with `pad[b]` padding positions (left padding; right
/// padding needs no mask in a causal model, the caller ignores those columns). `temperature`
/// scales logits first (1.0 = the raw distribution). `chunk` bounds the positions per head block.
pub fn score_tokens<B: Backend>(
    model: &Transformer<B>,
    tokens: Tensor<B, 2, Int>,
    pad: &[usize],
    temperature: f64,
    chunk: usize,
) -> TokenStats<B> {
    let (logprobs, entropies) = score(model, tokens, pad, temperature, chunk, Entropies::Differentiable);
    TokenStats {
        logprobs,
        entropies: entropies.expect("asked for"),
    }
}

/// [`score_tokens`] without the entropies, for losses that need log-probs only (the supervised
/// warm-up): the same log-probs, one full-vocabulary `exp`/product/sum pass less per position, and
/// no `[B, c, V]` tensor kept for an entropy's backward.
pub fn score_logprobs<B: Backend>(
    model: &Transformer<B>,
    tokens: Tensor<B, 2, Int>,
    pad: &[usize],
    temperature: f64,
    chunk: usize,
) -> Tensor<B, 2> {
    score(model, tokens, pad, temperature, chunk, Entropies::Skip).0
}

/// Log-probs `[B, T-1]` of each next token and the entropies `[B, T-1]` as `mode` asks.
fn score<B: Backend>(
    model: &Transformer<B>,
    tokens: Tensor<B, 2, Int>,
    pad: &[usize],
    temperature: f64,
    chunk: usize,
    mode: Entropies,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    let [bsz, t] = tokens.dims();
    assert!(t >= 2, "score_tokens needs at least 2 positions");
    assert_eq!(pad.len(), bsz);
    let device = tokens.device();
    let mc = model.config();
    let rope = Rope::left_padded(pad, 0..t, &mc.rope_inv_freq(), &device);
    let bias = attention_bias(pad, t, t, &device);
    let hidden = model
        .forward_hidden(tokens.clone(), &rope, &bias, None)
        .narrow(1, 0, t - 1); // [B, T-1, D]
    let targets = tokens.narrow(1, 1, t - 1); // [B, T-1]
    head_stats(model, hidden, targets, temperature, chunk, mode)
}

/// How a scoring pass computes entropies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entropies {
    /// None (log-probs only).
    Skip,
    /// Values only, outside the autodiff graph (a metric, or a mask's input).
    Detached,
    /// With gradient (an entropy term in the loss).
    Differentiable,
}

/// Log-probs `[B, T]` of `targets [B, T]` under the head applied to `hidden [B, T, D]`, and the
/// entropies as `mode` asks, in chunks of `chunk` positions.
fn head_stats<B: Backend>(
    model: &Transformer<B>,
    hidden: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    temperature: f64,
    chunk: usize,
    mode: Entropies,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    let t = hidden.dims()[1];
    let chunk = chunk.max(1);
    let (mut lps, mut ents) = (vec![], vec![]);
    let mut start = 0;
    while start < t {
        let len = chunk.min(t - start);
        let z = model.logits(hidden.clone().narrow(1, start, len)); // [B, c, V]
        let z = if temperature == 1.0 { z } else { z / temperature };
        let lp = log_softmax(z, 2); // [B, c, V]
        let tgt = targets.clone().narrow(1, start, len).unsqueeze_dim::<3>(2); // [B, c, 1]
        lps.push(lp.clone().gather(2, tgt).squeeze_dim::<2>(2));
        // H = -Σ p·log p; p·log p is 0·(-large) = 0 in f32 for vanishing p, so no NaN.
        let entropy = |lp: Tensor<B, 3>| (lp.clone().exp() * lp).sum_dim(2).squeeze_dim::<2>(2).neg();
        match mode {
            Entropies::Skip => {}
            Entropies::Detached => ents.push(entropy(lp.detach())),
            Entropies::Differentiable => ents.push(entropy(lp)),
        }
        start += len;
    }
    let entropies = (mode != Entropies::Skip).then(|| Tensor::cat(ents, 1));
    (Tensor::cat(lps, 1), entropies)
}

/// Completion rows after their prompts: `tokens [N, Lp + Lc]` hold row i's prompt left-padded by
/// `pad[i]`, then its completion right-padded; rows with equal `prompt_of_row` share one prompt.
pub struct CompletionRows<'a, B: Backend> {
    /// `[N, Lp + Lc]` token ids.
    pub tokens: Tensor<B, 2, Int>,
    /// Left padding of each row's prompt.
    pub pad: &'a [usize],
    /// Prompt columns `Lp`.
    pub prompt_len: usize,
    /// Which prompt each row continues (any ids; equal ids must mean equal prompt columns).
    pub prompt_of_row: &'a [usize],
}

/// Log-probs `[N, Lc]` of every completion token (column j scores completion token j) and the
/// entropies as `mode` asks, each distinct prompt run once ([`crate::model::prefix`]) and the
/// output head applied to completion positions only.
pub fn score_completions<B: Backend>(
    model: &Transformer<B>,
    rows: CompletionRows<'_, B>,
    temperature: f64,
    chunk: usize,
    mode: Entropies,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    let [n, total] = rows.tokens.dims();
    let lp = rows.prompt_len;
    assert!(
        lp >= 1 && total > lp,
        "score_completions needs prompt and completion columns"
    );
    assert_eq!((rows.pad.len(), rows.prompt_of_row.len()), (n, n));
    let lc = total - lp;
    let device = rows.tokens.device();
    let (firsts, local) = distinct_prompts(rows.prompt_of_row);
    let index = |v: &[usize]| {
        let ids: Vec<i64> = v.iter().map(|&x| x as i64).collect();
        Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [v.len()]), &device)
    };
    let inv_freq = model.config().rope_inv_freq();
    let p_pad: Vec<usize> = firsts.iter().map(|&r| rows.pad[r]).collect();
    let prompts = model.forward_prompts(
        rows.tokens.clone().narrow(1, 0, lp).select(0, index(&firsts)), // [P, Lp]
        &Rope::left_padded(&p_pad, 0..lp, &inv_freq, &device),
        &attention_bias(&p_pad, lp, lp, &device),
    );
    let row_prompt = index(&local); // [N]
    // Column 0 is scored from the prompt's last position, column j > 0 from completion token j−1.
    let last = prompts
        .hidden
        .clone()
        .narrow(1, lp - 1, 1)
        .select(0, row_prompt.clone()); // [N, 1, D]
    let hidden = if lc > 1 {
        let tc = lc - 1;
        let h = model.forward_after_prompts(
            rows.tokens.clone().narrow(1, lp, tc), // [N, Lc−1]
            &Rope::left_padded(rows.pad, lp..lp + tc, &inv_freq, &device),
            &attention_bias(rows.pad, tc, lp + tc, &device),
            &prompts,
            &row_prompt,
        );
        Tensor::cat(vec![last, h], 1) // [N, Lc, D]
    } else {
        last
    };
    head_stats(model, hidden, rows.tokens.narrow(1, lp, lc), temperature, chunk, mode)
}

/// The first row of each distinct prompt id (in order of appearance), and each row's index
/// into that list.
fn distinct_prompts(prompt_of_row: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let (mut ids, mut firsts, mut local) = (vec![], vec![], Vec::with_capacity(prompt_of_row.len()));
    for (row, id) in prompt_of_row.iter().enumerate() {
        let at = ids.iter().position(|x| x == id).unwrap_or_else(|| {
            ids.push(*id);
            firsts.push(row);
            ids.len() - 1
        });
        local.push(at);
    }
    (firsts, local)
}

/// Builds `[B, T]` ids right-padded with `pad_id` from ragged rows (no left padding).
pub fn right_padded<B: Backend>(rows: &[Vec<u32>], pad_id: u32, device: &B::Device) -> Tensor<B, 2, Int> {
    let t = rows.iter().map(Vec::len).max().unwrap_or(0);
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| {
            r.iter()
                .map(|&x| x as i64)
                .chain(std::iter::repeat_n(pad_id as i64, t - r.len()))
        })
        .collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), t]), device)
}
