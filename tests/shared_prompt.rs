//! Scoring completions with each distinct prompt run once (`score_completions`, the GRPO update's
//! pass) equals the plain full-sequence pass (`score_tokens` on `[N, Lp + Lc]`, the reference):
//! log-probs, entropies and the gradients of a loss built on both, with left-padded prompts of
//! different lengths, ragged completions, and a row range that splits a group.

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use entrl::backend::{Cpu, CpuTrain};
use entrl::model::{ModelConfig, Transformer, weights};
use entrl::scoring::{CompletionRows, Entropies, score_completions, score_tokens};
use entrl::train::batch::{RlBatch, rl_batch};

fn model<B: Backend>() -> Transformer<B> {
    let cfg = ModelConfig::tiny(32);
    weights::build_model::<B>(&cfg, weights::init_weights(&cfg, 3), &Default::default()).unwrap()
}

/// Three groups (prompt lengths 3, 5, 2; sizes 3, 2, 1) with completions of 1 to 6 tokens.
fn batch() -> RlBatch<Cpu> {
    let (a, b, c): (&[u32], &[u32], &[u32]) = (&[1, 9, 10], &[2, 12, 13, 14, 15], &[1, 11]);
    let prompts = [a, a, a, b, b, c];
    let comps: [&[u32]; 6] = [
        &[4, 5, 6],
        &[7],
        &[8, 9, 10, 11, 12, 13],
        &[3, 3],
        &[20, 21, 22, 23],
        &[30, 31],
    ];
    rl_batch::<Cpu>(&prompts, &comps, &[true; 6], 1, &Default::default())
}

/// (log-probs, entropies) `[rows, Lc]` of rows `start..start+len`, shared-prompt pass.
fn shared<B: Backend>(m: &Transformer<B>, bt: &RlBatch<Cpu>, start: usize, len: usize) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let tokens = Tensor::from_data(bt.tokens.clone().narrow(0, start, len).into_data(), &Default::default());
    let rows = CompletionRows {
        tokens,
        pad: &bt.pad[start..start + len],
        prompt_len: bt.prompt_len,
        prompt_of_row: &bt.prompt_of_row[start..start + len],
    };
    let (lp, h) = score_completions(m, rows, 0.9, 4, Entropies::Differentiable);
    (lp, h.unwrap())
}

/// The same from the plain pass over whole rows.
fn plain<B: Backend>(m: &Transformer<B>, bt: &RlBatch<Cpu>, start: usize, len: usize) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let tokens = Tensor::from_data(bt.tokens.clone().narrow(0, start, len).into_data(), &Default::default());
    let s = score_tokens(m, tokens, &bt.pad[start..start + len], 0.9, 4);
    let (lp, lc) = (bt.prompt_len, bt.completion_len);
    (s.logprobs.narrow(1, lp - 1, lc), s.entropies.narrow(1, lp - 1, lc))
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn shared_prompt_scores_equal_the_full_pass() {
    let (m, bt) = (model::<Cpu>(), batch());
    assert_eq!(bt.prompt_of_row, vec![0, 0, 0, 3, 3, 5]);
    for (start, len) in [(0, 6), (1, 4), (5, 1)] {
        let (lp_s, h_s) = shared(&m, &bt, start, len);
        let (lp_p, h_p) = plain(&m, &bt, start, len);
        let (dl, dh) = (max_diff(&host(lp_s), &host(lp_p)), max_diff(&host(h_s), &host(h_p)));
        assert!(
            dl < 2e-5 && dh < 2e-5,
            "rows {start}+{len}: log-prob diff {dl}, entropy diff {dh}"
        );
    }
}

#[test]
fn shared_prompt_gradients_equal_the_full_pass() {
    let (m, bt) = (model::<CpuTrain>(), batch());
    let mask: Tensor<CpuTrain, 2> = Tensor::from_inner(bt.mask.clone());
    let [n, lc] = mask.dims();
    // a loss that weighs every completion token differently, plus the entropies
    let w: Vec<f32> = (0..n * lc).map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.4).collect();
    let w = Tensor::<CpuTrain, 2>::from_data(TensorData::new(w, [n, lc]), &Default::default());
    let loss = |(lp, h): (Tensor<CpuTrain, 2>, Tensor<CpuTrain, 2>)| ((lp * w.clone() + h * 0.3) * mask.clone()).sum();
    let g_shared = loss(shared(&m, &bt, 0, n)).backward();
    let g_plain = loss(plain(&m, &bt, 0, n)).backward();
    let params: [(&str, &Param<Tensor<CpuTrain, 2>>); 4] = [
        ("embed_tokens", &m.embed_tokens),
        ("layers.0.q_proj", &m.layers[0].q_proj),
        ("layers.0.k_proj", &m.layers[0].k_proj),
        ("layers.3.down_proj", &m.layers[3].down_proj),
    ];
    for (name, p) in params {
        let a = host(p.val().grad(&g_shared).expect("gradient"));
        let b = host(p.val().grad(&g_plain).expect("gradient"));
        let scale = b.iter().fold(0.0f32, |s, x| s.max(x.abs()));
        let d = max_diff(&a, &b);
        assert!(
            scale > 0.0 && d <= 1e-4 * scale,
            "{name}: max diff {d} at gradient scale {scale}"
        );
    }
}

#[test]
fn length_buckets_pad_outside_the_mask_and_leave_scores_unchanged() {
    // the GPU's fixed-shape policy rounds prompt and completion columns up to a bucket
    let (a, b): (&[u32], &[u32]) = (&[1, 9, 10], &[2, 12, 13, 14, 15]);
    let comps: [&[u32]; 3] = [&[4, 5, 6], &[7], &[20, 21, 22, 23]];
    let exact = rl_batch::<Cpu>(&[a, a, b], &comps, &[true; 3], 1, &Default::default());
    let padded = rl_batch::<Cpu>(&[a, a, b], &comps, &[true; 3], 8, &Default::default());
    assert_eq!((padded.prompt_len, padded.completion_len), (8, 8));
    assert_eq!(padded.tokens_in_loss, exact.tokens_in_loss);
    let lc = exact.completion_len;
    let m = model::<Cpu>();
    let (lp_e, h_e) = shared(&m, &exact, 0, 3);
    let (lp_p, h_p) = shared(&m, &padded, 0, 3);
    let mask_p = padded.mask.clone();
    assert_eq!(
        host(mask_p.clone().narrow(1, lc, 8 - lc).sum()),
        vec![0.0],
        "padding columns are masked"
    );
    let dl = max_diff(&host(lp_e), &host(lp_p.narrow(1, 0, lc)));
    let dh = max_diff(&host(h_e), &host(h_p.narrow(1, 0, lc)));
    assert!(
        dl < 2e-5 && dh < 2e-5,
        "bucketed vs exact: log-prob diff {dl}, entropy diff {dh}"
    );
}
