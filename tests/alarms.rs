//! Collapse alarms (`[alarms]`) in real runs of the tiny model: each alarm fires on a run built to
//! trigger it, a healthy run fires none, the logged statistic is recomputed here from the step
//! lines, and `stop_on` stops with a checkpoint that resumes exactly.
//!
//! The RL runs start from one shared warm-up (200 SFT steps imitating the quickstart's flawed
//! teacher: greedy answers to carrying additions are wrong, samples are sometimes right). Windows
//! are 3 steps so that a run of 5–14 steps shows an alarm.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use entrl::backend::CpuTrain;
use entrl_tests::{fresh_tmp, metric_lines, tiny_run};
use serde_json::Value;

const WINDOW: usize = 3;

const DATA: &str = r#"
[data]
train = { kind = "arithmetic", digits = 1, operands = 2, teacher_carry_error = 0.85 }
[eval]
num_problems = 8
[checkpoint]
save_every = 0
keep_last = 1
"#;

/// The warmed-up model every RL run starts from (trained once per test binary).
fn warm_model() -> &'static Path {
    static WARM: OnceLock<PathBuf> = OnceLock::new();
    WARM.get_or_init(|| {
        let dir = fresh_tmp("alarms", "warm");
        let rest = format!(
            "{DATA}\n[sft]\nsteps = 200\nbatch_size = 32\nlearning_rate = 3e-3\nwarmup_steps = 5\n[rl]\nsteps = 0\n"
        );
        let run = tiny_run(&dir, 3, &rest, "warm.toml");
        entrl::train::train::<CpuTrain>(run, false, false, &Default::default()).unwrap();
        dir.join("final")
    })
}

/// An RL run from the warm model: 8 prompts × 4 samples, ≤ 16 tokens, lr 3e-5, `[alarms]`
/// window 3, then `overrides` (`key=value`).
fn rl_run(name: &str, overrides: &[&str]) -> (PathBuf, anyhow::Result<entrl::train::run::RunSummary>) {
    let dir = fresh_tmp("alarms", name);
    let text = format!(
        "seed = 3\noutput_dir = \"{}\"\n[model]\npath = \"{}\"\n{DATA}\n[rl]\nsteps = 8\nprompts_per_step = 8\nnum_generations = 4\nmax_completion_length = 16\nlearning_rate = 3e-5\nwarmup_steps = 0\n[alarms]\nwindow = {WINDOW}\n",
        dir.display(),
        warm_model().display()
    );
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let run = entrl::config::RunFile::parse(&text, name, &overrides).unwrap();
    let result = entrl::train::train::<CpuTrain>(run, false, false, &Default::default());
    (dir, result)
}

/// The RL step lines of a run.
fn rl_lines(dir: &Path) -> Vec<Value> {
    metric_lines(dir).into_iter().filter(|l| l["phase"] == "rl").collect()
}

/// (step, value) of every line where `alarm/<name>` fired.
fn firings(lines: &[Value], name: &str) -> Vec<(u64, f64)> {
    let key = format!("alarm/{name}");
    lines
        .iter()
        .filter_map(|l| Some((l["step"].as_u64()?, l.get(&key)?.as_f64()?)))
        .collect()
}

/// Every alarm name that fired anywhere in the run.
fn all_fired(lines: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = lines
        .iter()
        .flat_map(|l| {
            l.as_object()
                .unwrap()
                .keys()
                .filter(|k| k.starts_with("alarm/"))
                .cloned()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The mean of `key` over the window of RL lines ending at index `i`.
fn window_mean(lines: &[Value], i: usize, key: &str) -> f64 {
    lines[i + 1 - WINDOW..=i]
        .iter()
        .map(|l| l[key].as_f64().unwrap())
        .sum::<f64>()
        / WINDOW as f64
}

/// Asserts `name` fired, and that every firing's logged statistic is the window mean of `key`
/// recomputed from the lines (above `threshold`); lines where it did not fire are at or below.
fn assert_mean_alarm(lines: &[Value], name: &str, key: &str, threshold: f64) {
    let fired = firings(lines, name);
    assert!(!fired.is_empty(), "{name} never fired");
    for i in WINDOW - 1..lines.len() {
        let m = window_mean(lines, i, key);
        let step = lines[i]["step"].as_u64().unwrap();
        match fired.iter().find(|f| f.0 == step) {
            Some(&(_, v)) => assert!((v - m).abs() < 1e-12 && m > threshold, "step {step}: {v} vs {m}"),
            None => assert!(m <= threshold, "step {step}: mean {m} > {threshold} but {name} silent"),
        }
    }
}

#[test]
fn a_healthy_run_fires_no_alarm() {
    let (dir, r) = rl_run("healthy", &["rl.steps=12"]);
    r.unwrap();
    let lines = rl_lines(&dir);
    assert_eq!(lines.len(), 12);
    assert_eq!(all_fired(&lines), Vec::<String>::new());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncation_fires_when_completions_cannot_finish() {
    let (dir, r) = rl_run("truncation", &["rl.max_completion_length=2"]);
    r.unwrap();
    assert_mean_alarm(&rl_lines(&dir), "truncation", "completion/truncated_ratio", 0.2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn zero_std_fires_on_an_untrained_model() {
    // a from-scratch model never answers right: every group's rewards are equal
    let dir = fresh_tmp("alarms", "zero_std");
    let rest = format!(
        "{DATA}\n[rl]\nsteps = 5\nprompts_per_step = 8\nnum_generations = 4\nmax_completion_length = 16\n[alarms]\nwindow = {WINDOW}\n"
    );
    let run = tiny_run(&dir, 3, &rest, "zero.toml");
    entrl::train::train::<CpuTrain>(run, false, false, &Default::default()).unwrap();
    assert_mean_alarm(&rl_lines(&dir), "zero_std", "frac_reward_zero_std", 0.9);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn clip_ratio_fires_with_many_iterations_and_a_tight_clip() {
    let (dir, r) = rl_run(
        "clip",
        &[
            "rl.steps=5",
            "rl.num_iterations=8",
            "rl.learning_rate=1e-3",
            "rl.epsilon=0.002",
            "rl.epsilon_high=0.002",
            "rl.dynamic_sampling=true",
            "rl.max_grad_norm=1000.0",
        ],
    );
    r.unwrap();
    assert_mean_alarm(&rl_lines(&dir), "clip_ratio", "clip_ratio/region", 0.1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn pass_gap_fires_when_a_groups_samples_are_alike() {
    // near-greedy sampling: the 4 samples of a prompt agree, so pass@4 ≈ pass@1
    let (dir, r) = rl_run("pass_gap", &["rl.temperature=0.05"]);
    r.unwrap();
    let lines = rl_lines(&dir);
    let fired = firings(&lines, "pass_gap");
    assert!(!fired.is_empty(), "pass_gap never fired");
    for i in WINDOW - 1..lines.len() {
        let (p1, pk) = (window_mean(&lines, i, "pass@1"), window_mean(&lines, i, "pass@k"));
        let expected = (0.05..=0.9).contains(&p1) && pk - p1 < 0.05;
        let step = lines[i]["step"].as_u64().unwrap();
        let got = fired.iter().find(|f| f.0 == step);
        assert_eq!(got.is_some(), expected, "step {step}: pass@1 {p1}, pass@k {pk}");
        if let Some(&(_, v)) = got {
            assert!((v - (pk - p1)).abs() < 1e-12);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn entropy_collapse_fires_under_a_strong_entropy_penalty() {
    let (dir, r) = rl_run(
        "collapse",
        &[
            "entropy.regularizer=\"penalty\"",
            "entropy.coef=1.0",
            "rl.learning_rate=1e-2",
        ],
    );
    r.unwrap();
    let lines = rl_lines(&dir);
    let fired = firings(&lines, "entropy_collapse");
    assert!(
        !fired.is_empty(),
        "entropy_collapse never fired: {:?}",
        all_fired(&lines)
    );
    assert!(firings(&lines, "entropy_blowup").is_empty());
    // the logged statistic is the slope of ln(entropy) over the window: negative and steep
    for (step, slope) in fired {
        let i = lines.iter().position(|l| l["step"] == step).unwrap();
        let y: Vec<f64> = lines[i + 1 - WINDOW..=i]
            .iter()
            .map(|l| l["entropy"].as_f64().unwrap().max(1e-12).ln())
            .collect();
        let want = (y[2] - y[0]) / 2.0; // three equally spaced points: the end-point slope
        assert!(
            (slope - want).abs() < 1e-9 && slope < -0.02,
            "step {step}: {slope} vs {want}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn entropy_blowup_fires_under_a_strong_entropy_bonus() {
    let (dir, r) = rl_run(
        "blowup",
        &[
            "entropy.regularizer=\"bonus\"",
            "entropy.coef=0.3",
            "rl.learning_rate=2e-3",
        ],
    );
    r.unwrap();
    let lines = rl_lines(&dir);
    assert!(!firings(&lines, "entropy_blowup").is_empty(), "{:?}", all_fired(&lines));
    assert!(firings(&lines, "entropy_collapse").is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn edis_drift_fires_when_an_entropy_bonus_roughens_trajectories() {
    let (dir, r) = rl_run(
        "edis",
        &[
            "rl.steps=12",
            "entropy.regularizer=\"bonus\"",
            "entropy.coef=0.05",
            "rl.learning_rate=7e-4",
        ],
    );
    r.unwrap();
    let lines = rl_lines(&dir);
    let fired = firings(&lines, "edis_drift");
    assert!(!fired.is_empty(), "edis_drift never fired: {:?}", all_fired(&lines));
    let start = window_mean(&lines, WINDOW - 1, "edis/mean");
    for (step, drift) in fired {
        let i = lines.iter().position(|l| l["step"] == step).unwrap();
        assert!(i + 1 >= 2 * WINDOW, "step {step}: drift needs two windows");
        let want = (window_mean(&lines, i, "edis/mean") - start) / start.max(0.05);
        assert!(
            (drift - want).abs() < 1e-9 && drift > 1.0,
            "step {step}: {drift} vs {want}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn stop_on_leaves_a_checkpoint_that_resumes_exactly() {
    let truncating = ["rl.max_completion_length=2", "rl.steps=6"];
    let (straight, r) = rl_run("straight", &truncating);
    r.unwrap();
    let stop = [truncating[0], truncating[1], "alarms.stop_on=[\"truncation\"]"];
    let (dir, r) = rl_run("stopped", &stop);
    let err = format!("{:#}", r.unwrap_err());
    assert!(err.contains("alarm 'truncation' stopped the run after step 3"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    assert!(dir.join("checkpoints/step-00000003/trainer_state.json").exists());
    // resume with the alarm still watched but no longer stopping: the rest of the run, and its
    // alarm lines (the watcher is rebuilt from the kept lines), equal the uninterrupted run's
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let run = entrl::config::RunFile::parse(&text, "resumed", &["alarms.stop_on=[]".into()]).unwrap();
    entrl::train::train::<CpuTrain>(run, true, false, &Default::default()).unwrap();
    let strip = |lines: Vec<Value>| -> Vec<Value> {
        lines
            .into_iter()
            .map(|mut l| {
                l.as_object_mut()
                    .unwrap()
                    .retain(|k, _| !k.starts_with("time/") && !k.starts_with("perf/"));
                l
            })
            .collect()
    };
    let (a, b) = (strip(metric_lines(&straight)), strip(metric_lines(&dir)));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    assert_eq!(firings(&rl_lines(&dir), "truncation").len(), 4, "steps 3–6");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&straight).ok();
}

#[test]
fn bad_alarm_settings_name_their_key() {
    let base = "output_dir = 'x'\n[model]\nconfig = 'c'\n[data.train]\nkind = 'arithmetic'\ndigits = 1\noperands = 2\n";
    let err = |o: &[&str]| {
        let o: Vec<String> = o.iter().map(|s| s.to_string()).collect();
        entrl::config::RunFile::parse(base, "x.toml", &o)
            .unwrap_err()
            .to_string()
    };
    let e = err(&["alarms.watch=[\"entropy_colaps\"]"]);
    assert!(e.contains("alarms.watch") && e.contains("entropy_colaps"), "{e}");
    let e = err(&["alarms.watch=[\"zero_std\"]", "alarms.stop_on=[\"pass_gap\"]"]);
    assert!(e.contains("alarms.stop_on") && e.contains("pass_gap"), "{e}");
    let e = err(&["alarms.window=1"]);
    assert!(e.contains("alarms.window"), "{e}");
    let e = err(&["alarms.zero_std=1.5"]);
    assert!(e.contains("alarms.zero_std") && e.contains("1.5"), "{e}");
    let e = err(&["alarms.pass_gap_between=[0.9, 0.1]"]);
    assert!(e.contains("alarms.pass_gap_between"), "{e}");
}
