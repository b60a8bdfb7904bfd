//! Our SmolLM2-135M-Instruct forward against Hugging Face transformers (float64), on the fixture
//! written by `scripts/oracle/smollm2_logits.py`. Tolerance 1e-3 on logits; a planted wrong rotary
//! layout must miss it by far, or the comparison would prove nothing.

use entrl::backend::Cpu;
use entrl::model::{self, gguf::unpermute_rows, weights};
use entrl::tokenizer::Tokenizer;
use entrl_tests::{logits_rows, root, smollm2_dir};
use serde::Deserialize;

const TOL: f32 = 1e-3;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}
#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    nll: f64,
    positions: Vec<Position>,
}
#[derive(Deserialize)]
struct Position {
    logsumexp: f64,
    argmax: usize,
    ids: Vec<usize>,
    logits: Vec<f64>,
}

fn fixture() -> Fixture {
    let p = root().join("tests/fixtures/smollm2_logits.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("fixture json")
}

/// Max |ours − reference| over the stored logits and log-sum-exps, and our NLL.
fn compare(model: &entrl::model::Transformer<Cpu>, case: &Case) -> (f32, f64, usize) {
    let rows = logits_rows(model, &case.ids);
    let mut max_diff = 0f32;
    let mut argmax_agree = 0;
    let mut nll = 0.0;
    for (t, (row, pos)) in rows.iter().zip(&case.positions).enumerate() {
        for (&c, &want) in pos.ids.iter().zip(&pos.logits) {
            max_diff = max_diff.max((row[c] - want as f32).abs());
        }
        let logz = entrl::rollout::sampler::row_stats(row, 1.0).logz;
        max_diff = max_diff.max((logz - pos.logsumexp).abs() as f32);
        let am = row
            .iter()
            .enumerate()
            .fold(0, |b, (i, &z)| if z > row[b] { i } else { b });
        argmax_agree += usize::from(am == pos.argmax);
        if t + 1 < case.ids.len() {
            nll -= row[case.ids[t + 1] as usize] as f64 - logz;
        }
    }
    (max_diff, nll / (case.ids.len() - 1) as f64, argmax_agree)
}

#[test]
fn logits_match_transformers_and_wrong_rope_misses() {
    let dir = smollm2_dir();
    let fx = fixture();
    let model = model::load_hf_dir::<Cpu>(&dir, &Default::default()).expect("load");
    for case in &fx.cases {
        let (d, nll, agree) = compare(&model, case);
        println!(
            "{:>3} tokens: max |Δlogit| = {d:.2e}, NLL ours {nll:.5} ref {:.5}, argmax agree {agree}/{}",
            case.ids.len(),
            case.nll,
            case.ids.len()
        );
        assert!(d <= TOL, "max abs diff {d} > {TOL} on {:?}", case.text);
        assert!((nll - case.nll).abs() < 1e-4);
        assert_eq!(agree, case.ids.len());
    }

    // Planted bug: q/k rows left in llama.cpp's interleaved-RoPE order (the un-permute skipped).
    let cfg = model::read_config(&dir).unwrap();
    let mut w = model::read_dir_weights(&dir).unwrap();
    for (name, t) in w.iter_mut() {
        let heads = if name.ends_with("q_proj.weight") {
            cfg.num_attention_heads
        } else if name.ends_with("k_proj.weight") {
            cfg.kv_heads()
        } else {
            continue;
        };
        // permute = inverse of unpermute; applying unpermute twice is another wrong layout too,
        // but the real llama.cpp order is the realistic mistake.
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let mut permuted = vec![0.0; t.data.len()];
        let hf = unpermute_rows(&(0..rows).map(|r| r as f32).collect::<Vec<_>>(), rows, 1, heads);
        for (dst_hf, &src) in hf.iter().enumerate() {
            let src = src as usize; // HF row dst_hf came from GGUF row src
            permuted[src * cols..(src + 1) * cols].copy_from_slice(&t.data[dst_hf * cols..(dst_hf + 1) * cols]);
        }
        t.data = permuted;
    }
    let wrong = weights::build_model::<Cpu>(&cfg, w, &Default::default()).unwrap();
    let (d, nll, _) = compare(&wrong, &fx.cases[1]);
    println!(
        "wrong rotary layout: max |Δlogit| = {d:.2}, NLL {nll:.3} vs {:.3}",
        fx.cases[1].nll
    );
    assert!(
        d > 100.0 * TOL,
        "the planted rotary bug is within {d}: the tolerance proves nothing"
    );
}

#[test]
fn tokenizer_ids_match_transformers() {
    let tok = Tokenizer::from_file(&smollm2_dir().join("tokenizer.json")).unwrap();
    for case in &fixture().cases {
        assert_eq!(tok.encode(&case.text), case.ids, "{:?}", case.text);
        assert_eq!(tok.decode(&case.ids, true), case.text);
    }
}
