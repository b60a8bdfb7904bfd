//! Qwen3 (QK-norm) and Llama 3.x (`llama3` rotary scaling) against Hugging Face transformers
//! (float64), on tiny random models made and saved by `scripts/oracle/new_archs_golden.py`
//! (`tests/fixtures/models/`, no downloads). Tolerance 1e-4 on every logit; the planted bugs
//! (QK-norm skipped, rotary scaling ignored) must miss it, or the comparison proves nothing.

use entrl::backend::Cpu;
use entrl::model::{self, Transformer};
use entrl_tests::{logits_rows, root};
use serde::Deserialize;

const TOL: f64 = 1e-4;

#[derive(Deserialize)]
struct Case {
    model_type: String,
    ids: Vec<u32>,
    logits: Vec<Vec<f64>>,
}

fn case(name: &str) -> Case {
    let p = root().join("tests/fixtures/new_archs_golden.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("json");
    serde_json::from_value(v["cases"][name].clone()).expect("case")
}

fn max_diff(model: &Transformer<Cpu>, case: &Case) -> f64 {
    let rows = logits_rows(model, &case.ids);
    assert_eq!(rows.len(), case.logits.len());
    rows.iter()
        .zip(&case.logits)
        .flat_map(|(ours, theirs)| ours.iter().zip(theirs).map(|(&a, &b)| (a as f64 - b).abs()))
        .fold(0.0, f64::max)
}

fn load(name: &str) -> (Transformer<Cpu>, Case) {
    let dir = root().join("tests/fixtures/models").join(name);
    let m = model::load_hf_dir::<Cpu>(&dir, &Default::default()).expect("load fixture model");
    let c = case(name);
    assert_eq!(m.config().model_type, c.model_type);
    (m, c)
}

/// Saved by entrl and loaded again: the same config fields and the same logits, bit for bit.
fn roundtrip(m: &Transformer<Cpu>, case: &Case, tag: &str) -> Transformer<Cpu> {
    let out = std::env::temp_dir().join(format!("entrl_new_archs_{tag}"));
    let _ = std::fs::remove_dir_all(&out);
    model::save_hf_dir(m, &out).expect("save");
    let back = model::load_hf_dir::<Cpu>(&out, &Default::default()).expect("reload");
    assert_eq!(back.config(), m.config());
    assert_eq!(max_diff(&back, case), max_diff(m, case));
    back
}

#[test]
fn qwen3_matches_transformers_and_skipped_qk_norm_misses() {
    let (m, c) = load("qwen3_tiny");
    assert!(m.config().qk_norm() && m.config().head_dim() * m.config().num_attention_heads != m.config().hidden_size);
    let d = max_diff(&m, &c);
    println!("qwen3_tiny: max |entrl - transformers(f64)| = {d:.2e}");
    assert!(d <= TOL, "{d}");
    roundtrip(&m, &c, "qwen3");

    let mut planted = m;
    for b in &mut planted.layers {
        (b.q_norm, b.k_norm) = (None, None);
    }
    let d = max_diff(&planted, &c);
    println!("qwen3_tiny with QK-norm skipped: {d:.2e}");
    assert!(d > 100.0 * TOL, "the planted bug is within {d}");
}

#[test]
fn llama3_matches_transformers_and_ignored_rope_scaling_misses() {
    let (m, c) = load("llama3_tiny");
    assert_eq!(m.config().rope_scaling.as_ref().unwrap()["rope_type"], "llama3");
    let d = max_diff(&m, &c);
    println!("llama3_tiny: max |entrl - transformers(f64)| = {d:.2e}");
    assert!(d <= TOL, "{d}");
    let back = roundtrip(&m, &c, "llama3");
    let saved = std::fs::read_to_string(std::env::temp_dir().join("entrl_new_archs_llama3/config.json")).unwrap();
    assert!(
        saved.contains("\"llama3\"") && saved.contains("\"rope_theta\": 500000.0"),
        "{saved}"
    );

    let mut planted = back;
    planted.config.rope_scaling = None;
    let d = max_diff(&planted, &c);
    println!("llama3_tiny with rope scaling ignored: {d:.2e}");
    assert!(d > 100.0 * TOL, "the planted bug is within {d}");
}

#[test]
fn unimplemented_architectures_fail_clearly() {
    let src = root().join("tests/fixtures/models/llama3_tiny/config.json");
    let text = std::fs::read_to_string(src).unwrap();
    let cases = [
        (
            text.replace("\"llama3\"", "\"yarn\""),
            "rope_scaling of type 'yarn' is not supported",
        ),
        (
            text.replace("\"model_type\": \"llama\"", "\"model_type\": \"gemma3\""),
            "model_type 'gemma3' is not supported",
        ),
        (text.replace("\"mlp_bias\": false", "\"mlp_bias\": true"), "mlp_bias"),
        (text.replace("\"factor\": 8.0,", ""), "'factor'"),
    ];
    for (i, (config, want)) in cases.iter().enumerate() {
        let dir = std::env::temp_dir().join(format!("entrl_new_archs_bad_{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), config).unwrap();
        let e = model::read_config(&dir).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("config.json"), "{e}");
    }
}
