//! Entropy-Tree on the decoder seam: τ = ∞ is greedy decoding, the leaf count never exceeds
//! N_tree, every leaf equals a from-scratch recomputation of its path, p(a|x) sums to 1 and the
//! predictive entropy lies in [0, ln #answers].

use entrl::backend::Cpu;
use entrl::decoding::tree::{
    Importance, LeafWeight, Threshold, TreeConfig, answer_distribution, grow, leaf_weight, predictive_entropy,
};
use entrl::model::{self, Transformer};
use entrl::rollout::reference::greedy_uncached;
use entrl::rollout::{RolloutConfig, SamplingParams};
use entrl_tests::{assert_equals_from_scratch, smollm2_dir, tiny_model};

const V: usize = 96;

fn greedy(max_new: usize) -> RolloutConfig {
    RolloutConfig {
        group_size: 1,
        max_new_tokens: max_new,
        sampling: SamplingParams {
            temperature: 0.0,
            top_logprobs: 0,
            ..Default::default()
        },
        eos_ids: vec![2],
        seed: 0,
        first_prompt_index: 0,
        policy: entrl::rollout::DecodePolicy::default(),
    }
}

fn tree(tau: f64, delta: Option<f64>, branch: usize, max_leaves: usize) -> TreeConfig {
    TreeConfig {
        tau: Threshold::Value(tau),
        delta: Threshold::Value(delta.unwrap_or(0.0)),
        importance: if delta.is_some() {
            Importance::QuestionAttention
        } else {
            Importance::None
        },
        branch,
        max_leaves,
        leaf_weight: LeafWeight::Weighted,
    }
}

fn prompts() -> Vec<Vec<u32>> {
    vec![vec![5, 17, 9, 33, 12], vec![40, 41], vec![7, 8, 9, 10, 11, 12, 13]]
}

fn whole(prompts: &[Vec<u32>]) -> Vec<std::ops::Range<usize>> {
    prompts.iter().map(|p| 0..p.len()).collect()
}

#[test]
fn infinite_tau_is_greedy_decoding() {
    let model = tiny_model(V, 11);
    let ps = prompts();
    let out = grow(
        &model,
        &ps,
        &greedy(16),
        &tree(f64::INFINITY, Some(0.0), 2, 8),
        &whole(&ps),
    );
    assert_eq!(out.completions.len(), ps.len(), "one leaf per prompt");
    for (c, p) in out.completions.iter().zip(&ps) {
        assert!(c.forks.is_empty());
        assert_eq!(c.tokens, greedy_uncached(&model, p, 16, &[2]));
    }
}

fn check_leaves(model: &Transformer<Cpu>, ps: &[Vec<u32>], max_new: usize, tol: f64) {
    for (branch, n_tree) in [(2, 1), (2, 5), (3, 8), (4, 6)] {
        // τ = 0 with no gate: every position wants to fork, the budget decides
        let out = grow(
            model,
            ps,
            &greedy(max_new),
            &tree(0.0, None, branch, n_tree),
            &whole(ps),
        );
        for (p, prompt) in ps.iter().enumerate() {
            let leaves: Vec<_> = out.completions.iter().filter(|c| c.prompt_index == p).collect();
            assert!(leaves.len() <= n_tree, "b={branch} N={n_tree}: {} leaves", leaves.len());
            assert_eq!(leaves.len(), n_tree, "forks everywhere fill the budget");
            let w: f64 = leaves.iter().map(|c| leaf_weight(c, LeafWeight::Weighted)).sum();
            assert!((w - 1.0).abs() < 1e-5, "leaf weights sum to 1 without EOS pruning: {w}");
            for c in leaves {
                assert_equals_from_scratch(model, prompt, c, tol);
            }
        }
    }
}

#[test]
fn leaves_are_bounded_and_equal_from_scratch_paths_tiny() {
    let model = tiny_model(V, 12);
    check_leaves(&model, &prompts(), 8, 1e-4);
}

#[test]
fn leaves_are_bounded_and_equal_from_scratch_paths_smollm2() {
    let dir = smollm2_dir();
    let model = model::load_hf_dir::<Cpu>(&dir, &Default::default()).unwrap();
    let tok = entrl::tokenizer::Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    let ps: Vec<Vec<u32>> = ["Q: 7 + 5 = ? A:", "The largest planet is"]
        .iter()
        .map(|s| tok.encode(s))
        .collect();
    check_leaves(&model, &ps, 5, 2e-4);
}

#[test]
fn importance_gate_above_one_never_forks_and_calibration_resolves_percentiles() {
    let model = tiny_model(V, 13);
    let ps = prompts();
    // attention mass is a share (≤ 1): δ = 1.5 closes the gate
    let out = grow(&model, &ps, &greedy(10), &tree(0.0, Some(1.5), 2, 8), &whole(&ps));
    assert!(out.completions.iter().all(|c| c.forks.is_empty()));
    let cfg = TreeConfig {
        tau: Threshold::Percentile(50.0),
        delta: Threshold::Percentile(10.0),
        ..TreeConfig::default()
    };
    let cal = cfg.calibrated(&model, &ps, &greedy(10), &whole(&ps));
    let (Threshold::Value(tau), Threshold::Value(delta)) = (cal.tau, cal.delta) else {
        panic!("calibration must yield values: {cal:?}");
    };
    assert!(tau > 0.0 && tau <= (V as f64).ln() && (0.0..=1.0).contains(&delta));
    let out = grow(&model, &ps, &greedy(10), &cal, &whole(&ps));
    assert!(
        out.completions.iter().any(|c| !c.forks.is_empty()),
        "the median entropy forks somewhere"
    );
}

#[test]
fn answer_distribution_sums_to_one_and_entropy_is_bounded() {
    let model = tiny_model(V, 14);
    let ps = prompts();
    let out = grow(&model, &ps, &greedy(6), &tree(0.0, None, 3, 7), &whole(&ps));
    for p in 0..ps.len() {
        for rule in [LeafWeight::Weighted, LeafWeight::Frequency] {
            // the "answer" of a leaf: its last token
            let leaves: Vec<(Option<String>, f64)> = out
                .completions
                .iter()
                .filter(|c| c.prompt_index == p)
                .map(|c| (c.tokens.last().map(|t| t.to_string()), leaf_weight(c, rule)))
                .collect();
            let dist = answer_distribution(&leaves);
            let total: f64 = dist.iter().map(|d| d.1).sum();
            assert!((total - 1.0).abs() < 1e-12);
            let pe = predictive_entropy(&dist);
            assert!(pe >= 0.0 && pe <= (dist.len() as f64).ln() + 1e-12, "PE {pe}");
        }
    }
}
