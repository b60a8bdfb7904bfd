//! Entropy features inside real (small) training runs: trajectory artifacts of a GRPO run with
//! EDIS filtering + weighting, the high-entropy mask and an entropy penalty read back and
//! reproduce the logged per-step EDIS means and AUROCs exactly; EM-FT and EM-RL runs train.

use std::path::Path;

use entrl::backend::CpuTrain;
use entrl::config::RunFile;
use entrl::trajectories;
use entrl_rewards::stats::auroc;
use entrl_rewards::{Signal, signals};
use entrl_tests::{metric_lines, tiny_run};
use serde_json::Value;

fn config(run_dir: &Path, sft_steps: u64, rl: &str, entropy: &str) -> RunFile {
    let rest = format!(
        r#"
[data]
train = {{ kind = "arithmetic", digits = 1, operands = 2 }}
[sft]
steps = {sft_steps}
batch_size = 32
learning_rate = 3e-3
warmup_steps = 5
[rl]
max_completion_length = 16
learning_rate = 3e-5
{rl}
[entropy]
{entropy}
[eval]
num_problems = 24
[checkpoint]
save_every = 0
keep_last = 1
"#
    );
    tiny_run(run_dir, 3, &rest, "entropy-run-test")
}

#[test]
fn trajectory_artifacts_reproduce_logged_edis_metrics() {
    let dir = std::env::temp_dir().join(format!("entrl-entropy-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = config(
        &dir,
        80,
        "steps = 4\nprompts_per_step = 6\nnum_generations = 4",
        "regularizer = \"penalty\"\ncoef = 0.01\ntop_entropy_quantile = 0.5\n\
         filter = { enabled = true, oversample = 1.5 }\nweight = { enabled = true }",
    );
    let edis_params = run.entropy.edis;
    entrl::train::train::<CpuTrain>(run, false, false, &Default::default()).unwrap();
    let lines = metric_lines(&dir);
    let rl_lines: Vec<&Value> = lines.iter().filter(|l| l["phase"] == "rl").collect();
    assert_eq!(rl_lines.len(), 4);
    let mut both_classes = 0;
    for line in rl_lines {
        let step = line["step"].as_u64().unwrap();
        let path = dir
            .join("trajectories")
            .join(trajectories::file_name("train", step, ""));
        let (h, recs) = trajectories::read(&path).unwrap();
        assert_eq!((h.kind.as_str(), h.step, h.signals.edis), ("train", step, edis_params));
        // 6 prompts × ceil(1.5·4) = 6 sampled, 4 kept each
        assert_eq!(recs.len(), 36, "step {step}");
        assert_eq!(recs.iter().filter(|r| r.kept).count(), 24, "step {step}");
        // recompute EDIS from the stored raw entropies, average per class in file order
        for (class, want) in [("correct", true), ("incorrect", false)] {
            let v: Vec<f64> = recs
                .iter()
                .filter(|r| r.correct == want)
                .map(|r| signals::edis(&r.entropies, &h.signals.edis))
                .collect();
            let key = format!("edis/mean_{class}");
            if v.is_empty() {
                assert!(
                    line.get(&key).is_none(),
                    "step {step}: {key} logged without {class} completions"
                );
            } else {
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                assert_eq!(Some(mean), line[&key].as_f64(), "step {step} {key}");
            }
        }
        // the top-20 log-probs of every token travel with the record; DeepConf's C_t is −their mean
        for r in &recs {
            assert_eq!(r.top_logprobs.len(), r.tokens.len());
            assert!(
                r.top_logprobs
                    .iter()
                    .all(|t| t.len() == 20 && t.windows(2).all(|w| w[0].1 >= w[1].1))
            );
            for (c, t) in r.confidence.iter().zip(&r.top_logprobs) {
                let want = -t.iter().map(|e| e.1 as f64).sum::<f64>() / 20.0;
                assert!((*c as f64 - want).abs() < 1e-5);
            }
        }
        let labels: Vec<bool> = recs.iter().map(|r| r.correct).collect();
        for s in [
            Signal::Edis,
            Signal::MeanEntropy,
            Signal::ConfMean,
            Signal::ConfLowestGroup,
        ] {
            let conf: Vec<f64> = recs
                .iter()
                .map(|r| s.confidence(s.compute(&r.trajectory(), &h.signals)))
                .collect();
            let a = auroc(&conf, &labels);
            assert_eq!(
                a,
                line.get(format!("auroc/{}", s.name())).and_then(Value::as_f64),
                "step {step}"
            );
            both_classes += usize::from(a.is_some());
        }
        // EDIS weights: mean 1 inside every correctness subgroup of a kept group
        let kept: Vec<_> = recs.iter().filter(|r| r.kept).collect();
        for g in kept.chunks(4) {
            for class in [true, false] {
                let w: Vec<f64> = g.iter().filter(|r| r.correct == class).map(|r| r.weight).collect();
                if !w.is_empty() {
                    assert!((w.iter().sum::<f64>() / w.len() as f64 - 1.0).abs() < 1e-9);
                }
            }
        }
        assert!(line["entropy_mask/kept_ratio"].as_f64().unwrap() > 0.3);
    }
    assert!(
        both_classes > 0,
        "no step had both correct and incorrect completions: the test checked nothing"
    );
    for label in ["initial", "before_rl", "final"] {
        let found = std::fs::read_dir(dir.join("trajectories")).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(&format!("-{label}.safetensors"))
        });
        assert!(found, "no eval artifact for {label}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn em_ft_and_em_rl_runs_train_without_labels() {
    for (name, rl, entropy) in [
        (
            "em_ft",
            "steps = 3\nprompts_per_step = 8\nnum_generations = 1",
            "objective = \"em_ft\"",
        ),
        (
            "em_rl_token",
            "steps = 3\nprompts_per_step = 4\nnum_generations = 4\nadvantage_estimator = \"rloo\"\nbeta = 0.001",
            "objective = \"em_rl_token\"",
        ),
        (
            "em_rl_sequence",
            "steps = 3\nprompts_per_step = 4\nnum_generations = 4\nadvantage_estimator = \"rloo\"",
            "objective = \"em_rl_sequence\"",
        ),
    ] {
        let dir = std::env::temp_dir().join(format!("entrl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        entrl::train::train::<CpuTrain>(config(&dir, 0, rl, entropy), false, false, &Default::default()).unwrap();
        let lines = metric_lines(&dir);
        let rl_lines: Vec<&Value> = lines.iter().filter(|l| l["phase"] == "rl").collect();
        assert_eq!(rl_lines.len(), 3, "{name}");
        for l in &rl_lines {
            assert!(l["loss"].as_f64().unwrap().is_finite(), "{name}: loss");
            assert!(l["grad_norm"].as_f64().unwrap() > 0.0, "{name}: no gradient");
        }
        let step = rl_lines[0]["step"].as_u64().unwrap();
        let (_, recs) = trajectories::read(
            &dir.join("trajectories")
                .join(trajectories::file_name("train", step, "")),
        )
        .unwrap();
        for r in &recs {
            let want = match name {
                "em_rl_token" => -r.entropies.iter().map(|&x| x as f64).sum::<f64>(),
                "em_rl_sequence" => r.logprobs.iter().map(|&x| x as f64).sum::<f64>(),
                _ => r.reward, // EM-FT: the verifier's reward, recorded but unused
            };
            assert_eq!(r.reward, want, "{name}: reward from the rollout's own statistics");
        }
        if name == "em_ft" {
            // EM-FT's loss is the token-mean entropy of the scoring pass (T = 1)
            let l = rl_lines[0];
            assert!((l["loss"].as_f64().unwrap() - l["entropy"].as_f64().unwrap()).abs() < 1e-4);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
