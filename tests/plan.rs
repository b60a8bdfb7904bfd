//! The run plan: every setting resolved once from the run file, one tokenizer rule, the SFT
//! optimiser's own β₂, and one non-finite-step limit governing both phases.

use std::path::Path;

use entrl::backend::CpuTrain;
use entrl::config::RunFile;
use entrl::plan::RunPlan;
use entrl::tokenizer::tokenizer_json;
use entrl_tests::{fresh_tmp, root};

fn run_text(out: &Path, extra: &str) -> String {
    format!(
        "output_dir = \"{}\"\n{extra}\n[model]\nconfig = \"{}\"\n[data]\ntrain = {{ kind = \"arithmetic\", digits = 1, operands = 2 }}\n",
        out.display(),
        root().join("configs/model/tiny.toml").display(),
    )
}

#[test]
fn tokenizer_rule_is_one_rule() {
    let explicit = Path::new("my/tokenizer.json");
    let dir = Path::new("ckpt/step-4");
    assert_eq!(tokenizer_json(Some(explicit), Some(dir)), explicit);
    assert_eq!(tokenizer_json(Some(explicit), None), explicit);
    assert_eq!(tokenizer_json(None, Some(dir)), dir.join("tokenizer.json"));
    assert_eq!(tokenizer_json(None, None), Path::new("data/tokenizer.json"));
}

#[test]
fn plan_resolves_every_setting_once() {
    let out = fresh_tmp("plan", "resolve");
    let text = run_text(&out, "max_consecutive_nonfinite = 3");
    let sets = [
        "sft.adam_beta2=0.95",
        "sft.weight_decay=0.01",
        "rl.adam_beta2=0.98",
        "rl.temperature=0.7",
        "rl.top_k=7",
        "rl.max_completion_length=12",
        "eval.top_k=5",
        "eval.top_p=0.9",
        "eval.temperature=0.6",
        "rl.beta=0.04",
    ];
    let mut sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let tokenizer = root().join("data/tokenizer.json");
    sets.push(format!("model.tokenizer=\"{}\"", tokenizer.display()));
    let file = RunFile::parse(&text, "x", &sets).unwrap();
    let plan = RunPlan::resolve(file).unwrap();
    assert_eq!(plan.model.tokenizer_json, tokenizer);
    assert_eq!((plan.sft.adamw.beta2, plan.sft.adamw.weight_decay), (0.95, 0.01));
    assert_eq!(plan.rl.adamw.beta2, 0.98);
    assert_eq!(plan.max_consecutive_nonfinite, 3);
    let r = &plan.rollout;
    assert_eq!((r.temperature, r.top_k, r.max_new_tokens), (0.7, 7, 12));
    let e = &plan.eval.sampled;
    assert_eq!((e.temperature, e.top_p, e.top_k), (0.6, 0.9, 5));
    assert_eq!(e.max_new_tokens, 12, "eval length defaults to the rollout's");
    assert_eq!(plan.loss.beta, 0.04);
    assert_eq!(plan.eval.problems.len(), 200);
    assert!(!plan.model.eos.is_empty());
    // the limit moved out of [rl]: the old key is refused, naming it
    let e = RunFile::parse(&text, "x", &["rl.max_consecutive_nonfinite=2".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rl.max_consecutive_nonfinite") && e.contains("unknown field"),
        "{e}"
    );
}

/// Trains a few SFT steps of the tiny model; the final weights' bytes.
fn sft_weights(name: &str, sets: &[&str]) -> Vec<u8> {
    let out = fresh_tmp("plan", name);
    let mut all: Vec<String> = vec![
        format!("model.tokenizer=\"{}\"", root().join("data/tokenizer.json").display()),
        "sft.steps=3".into(),
        "sft.batch_size=4".into(),
        "eval.num_problems=2".into(),
        "rl.max_completion_length=8".into(),
    ];
    all.extend(sets.iter().map(|s| s.to_string()));
    let file = RunFile::parse(&run_text(&out, ""), "x", &all).unwrap();
    entrl::train::train::<CpuTrain>(file, false, false, &Default::default()).unwrap();
    std::fs::read(out.join("final/model.safetensors")).unwrap()
}

#[test]
fn sft_beta2_reaches_the_warm_up_optimiser() {
    let default = sft_weights("b2_default", &[]);
    assert_eq!(default, sft_weights("b2_same", &["sft.adam_beta2=0.999"]));
    assert_ne!(default, sft_weights("b2_other", &["sft.adam_beta2=0.9"]));
}

/// A tiny model directory whose weights are all 1e30 (finite, so it loads): the forward pass
/// overflows, every loss is non-finite.
fn overflowing_model_dir() -> std::path::PathBuf {
    let dir = fresh_tmp("plan", "overflow_model");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = entrl::model::read_model_config_file(&root().join("configs/model/tiny.toml")).unwrap();
    let mut w = entrl::model::weights::init_weights(&cfg, 1);
    for t in w.values_mut() {
        t.data.iter_mut().for_each(|x| *x = 1e30);
    }
    entrl::model::write_config(&cfg, &dir).unwrap();
    entrl::model::weights::write_safetensors(&w, &dir.join("model.safetensors")).unwrap();
    std::fs::copy(root().join("data/tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    dir
}

/// The top-level limit (once `rl.max_consecutive_nonfinite`, which also governed the warm-up)
/// aborts the warm-up; both phases count in the same `Trainer::step`. (An RL step of this model
/// cannot be made non-finite: its outputs are uniform, every reward ties, no gradient flows.)
#[test]
fn the_nonfinite_limit_is_top_level_and_governs_the_warm_up() {
    let model = overflowing_model_dir();
    let out = fresh_tmp("plan", "nan_sft");
    let text = format!(
        "output_dir = \"{}\"\nmax_consecutive_nonfinite = 2\n[model]\npath = \"{}\"\n[data]\ntrain = {{ kind = \"arithmetic\", digits = 1, operands = 2 }}\n",
        out.display(),
        model.display()
    );
    let sets: Vec<String> = [
        "sft.steps=6",
        "sft.batch_size=2",
        "rl.max_completion_length=4",
        "eval.num_problems=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let file = RunFile::parse(&text, "x", &sets).unwrap();
    let e = entrl::train::train::<CpuTrain>(file, false, false, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2 consecutive") && e.contains("max_consecutive_nonfinite"),
        "{e}"
    );
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let skipped = lines
        .lines()
        .filter(|l| l.contains("\"skipped_nonfinite\":true"))
        .count();
    assert_eq!(skipped, 2, "both skipped steps are logged before the abort:\n{lines}");
}

/// Every committed run config (`configs/*.toml`) parses and validates as it stands.
#[test]
fn every_committed_run_config_parses() {
    let dir = root().join("configs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            entrl::config::RunFile::load(&path, &[]).unwrap_or_else(|err| panic!("{err}"));
            n += 1;
        }
    }
    assert!(n >= 10, "{n} configs");
}

/// Every committed sweep file expands into distinct, valid arms (a typo in an axis key or a
/// `baseline` naming no arm fails here, not an hour into a sweep).
#[test]
fn every_committed_sweep_expands() {
    let dir = root().join("configs/sweeps");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let sweep = entrl::sweep::SweepFile::load(&path).unwrap_or_else(|err| panic!("{err}"));
            let arms = sweep.arms(&path).unwrap_or_else(|err| panic!("{err}"));
            entrl::sweep::check_distinct(&arms).unwrap();
            assert!(!arms.is_empty(), "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 3, "{n} sweeps");
}
