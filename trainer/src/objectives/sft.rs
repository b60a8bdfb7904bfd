//! Supervised warm-up: token cross-entropy on worked solutions (completion tokens only).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Negative log-likelihood summed over unmasked tokens and divided by `total_tokens`, the
/// unmasked-token count of the whole (accumulated) batch, so micro-batch losses add up to the
/// batch's mean token NLL. `logps`, `mask`: `[B, T]`.
pub fn sft_loss<B: Backend>(logps: Tensor<B, 2>, mask: Tensor<B, 2>, total_tokens: usize) -> Tensor<B, 1> {
    (logps * mask).sum().neg() / total_tokens.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::model::{ModelConfig, weights};
    use crate::rollout::sampler::row_stats;
    use crate::scoring::score_tokens;
    use crate::train::batch::sft_batch;

    #[test]
    fn matches_a_scalar_cross_entropy_from_full_logits() {
        let cfg = ModelConfig::tiny(40);
        let m = weights::build_model::<Cpu>(&cfg, weights::init_weights(&cfg, 5), &Default::default()).unwrap();
        let rows = vec![(vec![1u32, 7, 8], vec![9u32, 10, 2]), (vec![1u32, 3], vec![4u32, 2])];
        let (tokens, mask, n) = sft_batch::<Cpu>(&rows, 1, &Default::default());
        let stats = score_tokens(&m, tokens.clone(), &[0, 0], 1.0, 2);
        let ours = sft_loss(stats.logprobs, mask, n).into_scalar() as f64;
        // scalar reference: full logits of each unpadded sequence, f64 log-softmax, mean over targets
        let (mut nll, mut count) = (0.0, 0);
        for (p, y) in &rows {
            let seq: Vec<u32> = p.iter().chain(y).copied().collect();
            let ids = burn::tensor::TensorData::new(seq.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, seq.len()]);
            let logits = m
                .forward(Tensor::from_data(ids, &Default::default()))
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            let v = logits.len() / seq.len();
            for t in p.len() - 1..seq.len() - 1 {
                let row = &logits[t * v..(t + 1) * v];
                let logz = row_stats(row, 1.0).logz;
                nll -= row[seq[t + 1] as usize] as f64 - logz;
                count += 1;
            }
        }
        assert_eq!(count, n);
        assert!(
            (ours - nll / count as f64).abs() < 1e-5,
            "{ours} vs {}",
            nll / count as f64
        );
    }
}
