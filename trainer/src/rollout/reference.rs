//! Slow, obviously-correct decoders used as references in tests and benchmarks.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::model::Transformer;

/// Greedy decoding with no KV cache: a full forward over the whole sequence at every step.
pub fn greedy_uncached<B: Backend>(model: &Transformer<B>, prompt: &[u32], max_new: usize, eos: &[u32]) -> Vec<u32> {
    let device = model.embed_tokens.val().device();
    let mut seq: Vec<u32> = prompt.to_vec();
    let mut out = vec![];
    for _ in 0..max_new {
        let ids: Vec<i64> = seq.iter().map(|&x| x as i64).collect();
        let t = ids.len();
        let logits = model.forward(Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, t]), &device));
        let last = logits
            .narrow(1, t - 1, 1)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32");
        // argmax, lowest id on ties (same rule as the sampler)
        let tok = last
            .iter()
            .enumerate()
            .fold(0, |best, (i, &z)| if z > last[best] { i } else { best }) as u32;
        out.push(tok);
        seq.push(tok);
        if eos.contains(&tok) {
            break;
        }
    }
    out
}
