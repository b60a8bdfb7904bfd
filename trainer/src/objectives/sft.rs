//! Supervised warm-up: token cross-entropy on worked solutions (completion tokens only).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Mean negative log-likelihood over unmasked tokens: `−Σ logp·m / Σ m`, scaled by `1/micro`
/// when the batch is split into `micro` micro-batches of equal token weight.
pub fn sft_loss<B: Backend>(logps: Tensor<B, 2>, mask: Tensor<B, 2>, total_tokens: usize) -> Tensor<B, 1> {
    (logps * mask).sum().neg() / total_tokens.max(1) as f64
}
