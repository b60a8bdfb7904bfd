//! `entrl analyze sia` on a real (tiny, random) model: batched prefix scoring equals scoring each
//! prefix alone, curves have one point per prefix, sampled entropies stay within [0, ln M], and the
//! report and plots are written.

use entrl::model::ModelConfig;
use entrl::plan::ModelInputs;
use entrl::sia::{analyze, gold_curve, report};
use entrl_tests::{fresh_tmp, tiny_model, tiny_run};

#[test]
fn batched_prefixes_equal_one_at_a_time() {
    let dir = fresh_tmp("sia", "batch");
    let run = tiny_run(
        &dir,
        0,
        "[data]\ntrain = { kind = \"arithmetic\", digits = 1, operands = 3 }\n",
        "run.toml",
    );
    let model = tiny_model(96, 5);
    let inputs = ModelInputs::resolve(&run, None, &ModelConfig::tiny(96)).expect("inputs");
    let contexts: Vec<String> = [
        "Q: 1+2+3=?\nA:\n####",
        "Q: 1+2+3=?\nA: 1+2=3\n####",
        "Q: 1+2+3=?\nA: 1+2=3\n3+3=6 and more\n####",
    ]
    .map(String::from)
    .to_vec();
    let batched = gold_curve(&model, &inputs, &contexts, " 6");
    for (k, ctx) in contexts.iter().enumerate() {
        let alone = gold_curve(&model, &inputs, std::slice::from_ref(ctx), " 6");
        assert!(
            (batched.h[k] - alone.h[0]).abs() < 1e-5,
            "prefix {k}: {} vs {}",
            batched.h[k],
            alone.h[0]
        );
    }
    // A plain reference: the full sequence's logits, softmax entropy in f64 at the positions that
    // predict the answer's characters (the tokenizer is character-level: " 6" is 2 tokens).
    for (k, ctx) in contexts.iter().enumerate() {
        let ids = inputs.tok.encode(&format!("{ctx} 6"));
        let z = entrl_tests::logits_rows(&model, &ids);
        let entropy = |row: &[f32]| {
            let m = row.iter().fold(f64::MIN, |a, &b| a.max(b as f64));
            let e: Vec<f64> = row.iter().map(|&x| (x as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            -e.iter()
                .map(|v| v / s)
                .filter(|&p| p > 0.0)
                .map(|p| p * p.ln())
                .sum::<f64>()
        };
        let n = ids.len();
        let want = (entropy(&z[n - 3]) + entropy(&z[n - 2])) / 2.0;
        assert!(
            (batched.h[k] - want).abs() < 1e-4,
            "prefix {k}: {} vs reference {want}",
            batched.h[k]
        );
    }
    // Entropies at the answer's positions depend on the answer's tokens before each position, never
    // on the token predicted there: " 6" and " 7" share every position's context, " 16" and " 76"
    // do not.
    let h = |a: &str| gold_curve(&model, &inputs, &contexts[..1], a).h[0];
    assert_eq!(h(" 6"), h(" 7"));
    assert!(
        (h(" 16") - h(" 76")).abs() > 1e-6,
        "the answer's earlier tokens condition the later positions"
    );
}

#[test]
fn analysis_runs_end_to_end_and_reports() {
    let dir = fresh_tmp("sia", "run");
    let rest = "[data]\ntrain = { kind = \"arithmetic\", digits = 1, operands = 4 }\n[rl]\nmax_completion_length = 24\n\
                [sia]\nproblems = 6\nsamples = 3\nsample_max_tokens = 4\nexclude_answer_steps = false\n";
    let run = tiny_run(&dir, 0, rest, "run.toml");
    let s = run.sia.clone().expect("section");
    let model = tiny_model(96, 5);
    let inputs = ModelInputs::resolve(&run, None, &ModelConfig::tiny(96)).expect("inputs");
    let traces = analyze(&model, &inputs, &run, &s).expect("analyze");
    assert_eq!(traces.len(), 6);
    for t in &traces {
        assert_eq!(t.gold.h.len(), t.steps + 1);
        assert!(t.gold.h.iter().all(|h| h.is_finite() && *h >= 0.0));
        let sampled = t.sampled.as_ref().expect("samples = 3");
        assert_eq!(sampled.h.len(), t.steps + 1);
        assert!(sampled.h.iter().all(|h| (0.0..=3f64.ln() + 1e-12).contains(h)));
    }
    let rep = report::build(traces, "tiny", 0.0, 100);
    report::write(&rep, &dir).expect("write");
    for f in [
        "report.md",
        "report.json",
        "plots/sia_curves.svg",
        "plots/sia_accuracy_by_violations.png",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    assert_eq!(rep.estimators.len(), 2);
}
