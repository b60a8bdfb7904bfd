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
    let (logprobs, entropies) = score(model, tokens, pad, temperature, chunk, true);
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
    score(model, tokens, pad, temperature, chunk, false).0
}

/// Log-probs `[B, T-1]` of each next token and, when `with_entropy`, the entropies `[B, T-1]`.
fn score<B: Backend>(
    model: &Transformer<B>,
    tokens: Tensor<B, 2, Int>,
    pad: &[usize],
    temperature: f64,
    chunk: usize,
    with_entropy: bool,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    let [bsz, t] = tokens.dims();
    assert!(t >= 2, "score_tokens needs at least 2 positions");
    assert_eq!(pad.len(), bsz);
    let device = tokens.device();
    let mc = model.config();
    let positions: Vec<Vec<usize>> = pad
        .iter()
        .map(|&k| (0..t).map(|i| i.saturating_sub(k)).collect())
        .collect();
    let rope = Rope::new(&positions, &mc.rope_inv_freq(), &device);
    let bias = attention_bias(pad, t, t, &device);
    let hidden = model
        .forward_hidden(tokens.clone(), &rope, &bias, None)
        .narrow(1, 0, t - 1); // [B, T-1, D]
    let targets = tokens.narrow(1, 1, t - 1); // [B, T-1]

    let chunk = chunk.max(1);
    let (mut lps, mut ents) = (vec![], vec![]);
    let mut start = 0;
    while start < t - 1 {
        let len = chunk.min(t - 1 - start);
        let z = model.logits(hidden.clone().narrow(1, start, len)); // [B, c, V]
        let z = if temperature == 1.0 { z } else { z / temperature };
        let lp = log_softmax(z, 2); // [B, c, V]
        let tgt = targets.clone().narrow(1, start, len).unsqueeze_dim::<3>(2); // [B, c, 1]
        lps.push(lp.clone().gather(2, tgt).squeeze_dim::<2>(2));
        if with_entropy {
            // H = -Σ p·log p; p·log p is 0·(-large) = 0 in f32 for vanishing p, so no NaN.
            ents.push((lp.clone().exp() * lp).sum_dim(2).squeeze_dim::<2>(2).neg());
        }
        start += len;
    }
    let entropies = with_entropy.then(|| Tensor::cat(ents, 1));
    (Tensor::cat(lps, 1), entropies)
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
