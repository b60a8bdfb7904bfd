//! Rollout engine properties: entropies agree with the scoring pass, seeds reproduce, the KV cache
//! changes nothing, and a completion does not depend on what else shares its batch.

use burn::tensor::{Int, Tensor, TensorData};
use entrl::backend::Cpu;
use entrl::model::{self, Transformer};
use entrl::rollout::reference::greedy_uncached;
use entrl::rollout::{Completion, FinishReason, RolloutConfig, SamplingParams, generate};
use entrl::scoring::score_tokens;
use entrl_tests::{smollm2_dir, tiny_model};

const V: usize = 96;

fn cfg(group: usize, max_new: usize, seed: u64) -> RolloutConfig {
    RolloutConfig {
        group_size: group,
        max_new_tokens: max_new,
        sampling: SamplingParams::default(),
        eos_ids: vec![2],
        seed,
        first_prompt_index: 0,
        policy: entrl::rollout::DecodePolicy::default(),
    }
}

fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![5, 17, 9, 33, 12],
        vec![40, 41],
        vec![7, 8, 9, 10, 11, 12, 13, 14, 15],
    ]
}

/// Rescoring each completion (prompt + tokens) with the teacher-forced pass, left-padded in one
/// batch, must reproduce the engine's per-token log-probs and entropies.
fn assert_matches_scoring(model: &Transformer<Cpu>, prompts: &[Vec<u32>], out: &[Completion], tol: f32) {
    let seqs: Vec<Vec<u32>> = out
        .iter()
        .map(|c| prompts[c.prompt_index].iter().chain(&c.tokens).copied().collect())
        .collect();
    let t = seqs.iter().map(Vec::len).max().unwrap();
    let pad: Vec<usize> = seqs.iter().map(|s| t - s.len()).collect();
    let flat: Vec<i64> = seqs
        .iter()
        .zip(&pad)
        .flat_map(|(s, &p)| std::iter::repeat_n(0, p).chain(s.iter().map(|&x| x as i64)))
        .collect();
    let x = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(flat, [seqs.len(), t]), &Default::default());
    let stats = score_tokens(model, x, &pad, 1.0, 7);
    let lp = stats.logprobs.into_data().to_vec::<f32>().unwrap();
    let h = stats.entropies.into_data().to_vec::<f32>().unwrap();
    let ln_v = (model.config().vocab_size as f32).ln();
    let mut worst = (0f32, 0f32);
    for (b, c) in out.iter().enumerate() {
        let n = c.tokens.len();
        for j in 0..n {
            let col = t - 1 - n + j; // column predicting completion token j
            worst.0 = worst.0.max((h[b * (t - 1) + col] - c.entropies[j]).abs());
            worst.1 = worst.1.max((lp[b * (t - 1) + col] - c.logprobs[j]).abs());
            assert!(
                c.entropies[j] >= 0.0 && c.entropies[j] <= ln_v + 1e-5,
                "entropy {} outside [0, ln V]",
                c.entropies[j]
            );
        }
    }
    println!("max |ΔH| = {:.2e}, max |Δlogp| = {:.2e}", worst.0, worst.1);
    assert!(worst.0 <= tol && worst.1 <= tol, "engine vs scoring: {worst:?} > {tol}");
}

#[test]
fn engine_entropies_equal_scoring_pass_tiny() {
    let model = tiny_model(V, 1);
    let ps = prompts();
    let out = generate(&model, &ps, &cfg(4, 12, 3));
    assert_eq!(out.len(), 12);
    assert_matches_scoring(&model, &ps, &out, 1e-4);
}

#[test]
fn same_seed_same_completions_other_seed_differs() {
    let model = tiny_model(V, 1);
    let a = generate(&model, &prompts(), &cfg(4, 16, 11));
    let b = generate(&model, &prompts(), &cfg(4, 16, 11));
    let c = generate(&model, &prompts(), &cfg(4, 16, 12));
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap(),
        "byte-identical"
    );
    let toks = |v: &[Completion]| v.iter().map(|c| c.tokens.clone()).collect::<Vec<_>>();
    assert_ne!(toks(&a), toks(&c));
    // samples within a group differ too (each row has its own RNG stream)
    assert_ne!(a[0].tokens, a[1].tokens);
}

#[test]
fn completion_is_independent_of_batch_company() {
    // Left padding, per-row positions and dropping finished rows must not change any row.
    let model = tiny_model(V, 2);
    let ps = prompts();
    let together = generate(&model, &ps, &cfg(3, 14, 5));
    for (p, prompt) in ps.iter().enumerate() {
        let alone = generate(
            &model,
            std::slice::from_ref(prompt),
            &RolloutConfig {
                first_prompt_index: p,
                policy: entrl::rollout::DecodePolicy::default(),
                ..cfg(3, 14, 5)
            },
        );
        for (s, c) in alone.iter().enumerate() {
            let t = &together[p * 3 + s];
            assert_eq!(c.tokens, t.tokens, "prompt {p} sample {s}");
            for (x, y) in c.entropies.iter().zip(&t.entropies) {
                assert!((x - y).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn greedy_with_cache_equals_without_tiny() {
    let model = tiny_model(V, 3);
    let greedy = RolloutConfig {
        sampling: SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        ..cfg(1, 20, 0)
    };
    let out = generate(&model, &prompts(), &greedy);
    for (c, p) in out.iter().zip(&prompts()) {
        assert_eq!(c.tokens, greedy_uncached(&model, p, 20, &[2]));
    }
}

#[test]
fn eos_stops_a_row_and_length_truncates() {
    let model = tiny_model(V, 4);
    // Make every token an EOS: each completion is one token long and ends on EOS.
    let all_eos = RolloutConfig {
        eos_ids: (0..V as u32).collect(),
        ..cfg(2, 8, 0)
    };
    for c in generate(&model, &prompts(), &all_eos) {
        assert_eq!((c.tokens.len(), c.finish_reason), (1, FinishReason::Eos));
    }
    let none = RolloutConfig {
        eos_ids: vec![],
        ..cfg(2, 8, 0)
    };
    for c in generate(&model, &prompts(), &none) {
        assert_eq!((c.tokens.len(), c.finish_reason), (8, FinishReason::Length));
        assert_eq!(c.top_logprobs[0].len(), 20);
        assert!(c.top_logprobs[0].windows(2).all(|w| w[0].1 >= w[1].1));
    }
}

#[test]
fn smollm2_engine_matches_scoring_and_greedy_cache_matches() {
    let model = model::load_hf_dir::<Cpu>(&smollm2_dir(), &Default::default()).unwrap();
    let tok = entrl::tokenizer::Tokenizer::from_file(&smollm2_dir().join("tokenizer.json")).unwrap();
    let ps: Vec<Vec<u32>> = [
        "<|im_start|>user\nWhat is 12 plus 30?<|im_end|>\n<|im_start|>assistant\n",
        "The capital of France is",
    ]
    .iter()
    .map(|s| tok.encode(s))
    .collect();
    let out = generate(
        &model,
        &ps,
        &RolloutConfig {
            eos_ids: vec![2],
            ..cfg(2, 10, 9)
        },
    );
    assert_matches_scoring(&model, &ps, &out, 1e-4);
    let greedy = RolloutConfig {
        sampling: SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        ..cfg(1, 12, 0)
    };
    for (c, p) in generate(&model, &ps, &greedy).iter().zip(&ps) {
        assert_eq!(c.tokens, greedy_uncached(&model, p, 12, &[2]));
    }
}

/// Self-certainty recorded by the engine equals its definition `−(1/V) Σ_v ln(V·p_v)` computed
/// from a full recompute of the logits (log-softmax in f64), and is ≥ 0 (it is `KL(U‖p)`).
#[test]
fn engine_self_certainty_equals_its_definition() {
    let model = tiny_model(V, 4);
    let ps = prompts();
    let out = generate(&model, &ps, &cfg(2, 10, 9));
    let mut worst = 0f64;
    for c in &out {
        let p = &ps[c.prompt_index];
        let seq: Vec<u32> = p.iter().chain(&c.tokens).copied().collect();
        let rows = entrl_tests::logits_rows(&model, &seq);
        for (j, &sc) in c.self_certainty.iter().enumerate() {
            let z: Vec<f64> = rows[p.len() - 1 + j].iter().map(|&x| x as f64).collect();
            let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let logz = max + z.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
            let v = z.len() as f64;
            let want = -z.iter().map(|x| v.ln() + x - logz).sum::<f64>() / v;
            worst = worst.max((sc as f64 - want).abs());
            assert!(sc >= -1e-5, "self-certainty {sc} < 0");
        }
    }
    println!("max |ΔSC| = {worst:.2e}");
    assert!(worst < 1e-4, "self-certainty differs by {worst}");
}
