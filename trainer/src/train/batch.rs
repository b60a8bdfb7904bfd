//! Token batches for the scoring pass, built on the host.
//!
//! RL layout: prompts left-padded to a common length `Lp`, completions right-padded to `Lc`, so
//! every completion starts at column `Lp` and its scores are columns `Lp−1 .. Lp−1+Lc` of the
//! scoring output. SFT layout: whole sequences right-padded, loss mask on the target tokens.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// Prompt+completion rows ready for [`crate::scoring::score_tokens`].
#[derive(Clone)]
pub struct RlBatch<B: Backend> {
    /// `[N, Lp + Lc]` token ids.
    pub tokens: Tensor<B, 2, Int>,
    /// Left padding of each row.
    pub pad: Vec<usize>,
    /// Common prompt length `Lp`.
    pub prompt_len: usize,
    /// Common completion length `Lc`.
    pub completion_len: usize,
    /// `[N, Lc]` 1.0 on completion tokens that enter the loss.
    pub mask: Tensor<B, 2>,
    /// Unmasked token count.
    pub tokens_in_loss: usize,
    /// Row i continues prompt `prompt_of_row[i]`: consecutive rows with equal prompts (a group's
    /// G samples) share an id, so scoring runs each prompt once.
    pub prompt_of_row: Vec<usize>,
}

impl<B: Backend> RlBatch<B> {
    /// The same batch on `device`.
    pub fn to_device(&self, device: &B::Device) -> Self {
        Self {
            tokens: self.tokens.clone().to_device(device),
            mask: self.mask.clone().to_device(device),
            ..self.clone()
        }
    }
}

/// Builds the RL layout. `keep[i] = false` zeroes row i's mask (e.g. a truncated completion).
/// Prompt and completion columns are rounded up to a multiple of `bucket` (1: the longest row;
/// more: few distinct shapes for GPU kernels, the extra columns padding outside the mask).
pub fn rl_batch<B: Backend>(
    prompts: &[&[u32]],
    completions: &[&[u32]],
    keep: &[bool],
    bucket: usize,
    device: &B::Device,
) -> RlBatch<B> {
    let n = prompts.len();
    let round = |x: usize| x.div_ceil(bucket.max(1)) * bucket.max(1);
    let lp = round(prompts.iter().map(|p| p.len()).max().unwrap_or(1));
    let lc = round(completions.iter().map(|c| c.len()).max().unwrap_or(1).max(1));
    let mut ids = Vec::with_capacity(n * (lp + lc));
    let mut mask = Vec::with_capacity(n * lc);
    let mut pad = Vec::with_capacity(n);
    let mut count = 0;
    let mut prompt_of_row: Vec<usize> = Vec::with_capacity(n);
    for i in 0..n {
        let (p, c) = (prompts[i], completions[i]);
        let same = i > 0 && prompts[i - 1] == p;
        prompt_of_row.push(if same { prompt_of_row[i - 1] } else { i });
        pad.push(lp - p.len());
        ids.extend(std::iter::repeat_n(0i64, lp - p.len()));
        ids.extend(p.iter().map(|&t| t as i64));
        ids.extend(c.iter().map(|&t| t as i64));
        ids.extend(std::iter::repeat_n(0i64, lc - c.len()));
        for j in 0..lc {
            let m = keep[i] && j < c.len();
            count += usize::from(m);
            mask.push(if m { 1.0f32 } else { 0.0 });
        }
    }
    RlBatch {
        tokens: Tensor::from_data(TensorData::new(ids, [n, lp + lc]), device),
        pad,
        prompt_len: lp,
        completion_len: lc,
        mask: Tensor::from_data(TensorData::new(mask, [n, lc]), device),
        tokens_in_loss: count,
        prompt_of_row,
    }
}

/// Supervised rows: `[B, T]` ids and a `[B, T−1]` mask that is 1 where column t predicts a target
/// token (t+1 ≥ prompt length). T is the longest row rounded up to a multiple of `bucket`.
pub fn sft_batch<B: Backend>(
    rows: &[(Vec<u32>, Vec<u32>)],
    bucket: usize,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2>, usize) {
    let longest = rows.iter().map(|(p, y)| p.len() + y.len()).max().unwrap_or(2).max(2);
    let t = longest.div_ceil(bucket.max(1)) * bucket.max(1);
    let mut ids = Vec::with_capacity(rows.len() * t);
    let mut mask = Vec::with_capacity(rows.len() * (t - 1));
    let mut count = 0;
    for (p, y) in rows {
        let len = p.len() + y.len();
        ids.extend(p.iter().chain(y).map(|&x| x as i64));
        ids.extend(std::iter::repeat_n(0i64, t - len));
        for col in 0..t - 1 {
            let m = col + 1 >= p.len() && col + 1 < len;
            count += usize::from(m);
            mask.push(if m { 1.0f32 } else { 0.0 });
        }
    }
    (
        Tensor::from_data(TensorData::new(ids, [rows.len(), t]), device),
        Tensor::from_data(TensorData::new(mask, [rows.len(), t - 1]), device),
        count,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    #[test]
    fn rl_layout_aligns_completions() {
        let b = rl_batch::<Cpu>(
            &[&[5, 6, 7], &[8]],
            &[&[1, 2], &[3, 4, 9]],
            &[true, false],
            1,
            &Default::default(),
        );
        assert_eq!((b.prompt_len, b.completion_len, b.pad.clone()), (3, 3, vec![0, 2]));
        assert_eq!(
            b.tokens.into_data().to_vec::<i32>().unwrap_or_else(|_| vec![]).len(),
            12
        );
        assert_eq!(
            b.mask.into_data().to_vec::<f32>().unwrap(),
            vec![1., 1., 0., 0., 0., 0.]
        );
        assert_eq!(b.tokens_in_loss, 2);
        assert_eq!(b.prompt_of_row, vec![0, 1]);
        let g = rl_batch::<Cpu>(
            &[&[5, 6], &[5, 6], &[7], &[5, 6]],
            &[&[1u32][..]; 4],
            &[true; 4],
            1,
            &Default::default(),
        );
        assert_eq!(
            g.prompt_of_row,
            vec![0, 0, 2, 3],
            "only consecutive equal prompts share"
        );
    }

    #[test]
    fn sft_mask_covers_targets_only() {
        let (_, m, n) = sft_batch::<Cpu>(&[(vec![1, 2], vec![3, 4]), (vec![1], vec![5])], 1, &Default::default());
        // T = 4: row 0 predicts tokens 1..4, targets are tokens 2 and 3 -> columns 1, 2
        assert_eq!(m.into_data().to_vec::<f32>().unwrap(), vec![0., 1., 1., 1., 0., 0.]);
        assert_eq!(n, 3);
    }
}
