//! Entropy Sentinel's 17 features against an independent numpy implementation of the released
//! formulas (`scripts/oracle/sentinel_features_golden.py` → `tests/fixtures/sentinel_features_golden.json`):
//! random traces with k = 1…20, a one-token trace, a sampled token outside and inside the top-k,
//! all-equal entropies and a certain token.

use entrl_rewards::sentinel::{FEATURE_NAMES, response_features, topk_entropy};
use serde_json::Value;

/// Sampled ids, their log-probs, and the top-k entries at each position.
type Trace = (Vec<u32>, Vec<f32>, Vec<Vec<(u32, f32)>>);

/// One fixture trace.
fn trace(t: &Value) -> Trace {
    let toks = t.as_array().unwrap();
    let ids = toks.iter().map(|x| x["sampled"].as_u64().unwrap() as u32).collect();
    let lps = toks.iter().map(|x| x["logprob"].as_f64().unwrap() as f32).collect();
    let top = toks
        .iter()
        .map(|x| {
            x["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e[0].as_u64().unwrap() as u32, e[1].as_f64().unwrap() as f32))
                .collect()
        })
        .collect();
    (ids, lps, top)
}

#[test]
fn features_match_numpy() {
    let p = entrl_tests::root().join("tests/fixtures/sentinel_features_golden.json");
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let names: Vec<&str> = fx["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names, FEATURE_NAMES);
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for (c, case) in cases.iter().enumerate() {
        let (ids, lps, top) = trace(&case["tokens"]);
        for (t, want) in case["entropies"].as_array().unwrap().iter().enumerate() {
            let got = topk_entropy(&top[t], ids[t], lps[t]);
            assert!(
                (got - want.as_f64().unwrap()).abs() < 1e-12,
                "trace {c} token {t}: {got} vs {want}"
            );
        }
        let got = response_features(&ids, &lps, &top).unwrap();
        for (i, want) in case["features"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let tol = 1e-9 * want.abs().max(1.0);
            assert!(
                (got[i] - want).abs() <= tol,
                "trace {c} ({} tokens), feature {}: {} vs numpy {want}",
                ids.len(),
                FEATURE_NAMES[i],
                got[i]
            );
        }
    }
}

/// On real rollouts: the top-k entropy is a partial sum of the full-vocabulary entropy the engine
/// records (every term −p·ln p ≥ 0), and equals it when k is the whole vocabulary.
#[test]
fn topk_entropy_of_rollouts_bounds_and_reaches_the_full_entropy() {
    use entrl::record::Record;
    use entrl::rollout::{RolloutConfig, SamplingParams, generate};
    let vocab = 40;
    let model = entrl_tests::tiny_model(vocab, 3);
    for (k, equal) in [(5, false), (vocab, true)] {
        let cfg = RolloutConfig {
            group_size: 4,
            max_new_tokens: 12,
            sampling: SamplingParams {
                top_logprobs: k,
                ..Default::default()
            },
            eos_ids: vec![],
            seed: 7,
            first_prompt_index: 0,
            policy: entrl::rollout::DecodePolicy::default(),
        };
        for c in generate(&model, &[vec![1, 2, 3]], &cfg) {
            let r = Record::new(&c, 0, 0.0, false, &Default::default());
            let f = r.sentinel_features().expect("top-k recorded");
            let full: f64 = r.entropies.iter().map(|&h| h as f64).sum();
            if equal {
                assert!(
                    (f[10] - full).abs() < 1e-4 * full.max(1.0),
                    "k = V: {} vs {full}",
                    f[10]
                );
            } else {
                assert!(f[10] < full, "k = 5: {} not below {full}", f[10]);
            }
        }
    }
}
