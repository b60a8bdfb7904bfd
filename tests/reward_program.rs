//! Reward programs end to end: GRPO on the quickstart's task with the Python example program
//! (`rewards/programs/hash_accuracy.py`) gets exactly the built-in accuracy reward's run; a
//! program that crashes, hangs past its timeout or prints malformed JSON stops the run with an
//! error naming it and a checkpoint from which the run resumes to the uninterrupted result.

use std::path::{Path, PathBuf};

use entrl::backend::CpuTrain;
use entrl::train::metrics::TIMING_KEYS;
use entrl_tests::{fresh_tmp, metric_lines, root, tiny_run};
use serde_json::Value;

const SFT_STEPS: u64 = 100;

/// The run, with `reward` as its one `[[rewards]]` function.
fn run_file(dir: &Path, reward: &str) -> entrl::config::RunFile {
    let rest = format!(
        r#"
[data]
train = {{ kind = "arithmetic", digits = 1, operands = 2 }}
[[rewards]]
function = {reward}
weight = 1.0
[sft]
steps = {SFT_STEPS}
batch_size = 32
learning_rate = 3e-3
warmup_steps = 2
[rl]
steps = 4
prompts_per_step = 4
num_generations = 4
max_completion_length = 24
learning_rate = 3e-4
[eval]
num_problems = 24
every = 2
[checkpoint]
save_every = 100
"#
    );
    tiny_run(dir, 3, &rest, "reward-program-test")
}

fn example() -> String {
    root().join("rewards/programs/hash_accuracy.py").display().to_string()
}

/// The example program as a reward named like the built-in one, so metric keys line up.
fn program_reward(command: &[String], timeout_s: f64) -> String {
    let cmd: Vec<String> = command.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "{{ kind = \"program\", command = [{}], name = \"accuracy\", timeout_s = {timeout_s} }}",
        cmd.join(", ")
    )
}

fn train(dir: &Path, reward: &str, resume: bool) -> anyhow::Result<()> {
    entrl::train::train::<CpuTrain>(run_file(dir, reward), resume, !resume, &Default::default()).map(|_| ())
}

/// Metrics lines without wall-clock keys; `drop_program_keys` also removes the program's own
/// components and metrics (`reward/accuracy/has_answer`, `reward/accuracy/batch_size`).
fn lines(dir: &Path, drop_program_keys: bool) -> Vec<Value> {
    metric_lines(dir)
        .into_iter()
        .map(|mut v| {
            let m = v.as_object_mut().unwrap();
            for k in TIMING_KEYS {
                m.remove(k);
            }
            m.retain(|k, _| !k.starts_with("time/") && !k.starts_with("perf/"));
            if drop_program_keys {
                m.retain(|k, _| !matches!(k.as_str(), "reward/accuracy/has_answer" | "reward/accuracy/batch_size"));
            }
            v
        })
        .collect()
}

fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("final/model.safetensors")).unwrap()
}

fn reference_run() -> PathBuf {
    let dir = fresh_tmp("reward_program", "builtin");
    train(&dir, "{ kind = \"accuracy\", extractor = \"hash\" }", false).unwrap();
    dir
}

#[test]
fn python_program_equals_builtin_accuracy_and_failures_stop_resumably() {
    let builtin = reference_run();
    let program = fresh_tmp("reward_program", "python");
    let good = program_reward(&["python3".into(), example()], 60.0);
    train(&program, &good, false).unwrap();
    let with_program = lines(&program, false);
    assert!(
        with_program
            .iter()
            .any(|l| l.get("reward/accuracy/has_answer").is_some()),
        "the program's components reach the metrics"
    );
    let rl_rewards: Vec<f64> = with_program
        .iter()
        .filter_map(|l| l.get("reward/accuracy/mean").and_then(Value::as_f64))
        .collect();
    println!("RL steps' mean rewards (program): {rl_rewards:?}");
    assert!(
        rl_rewards.iter().any(|&r| r > 0.0),
        "a vacuous comparison: no reward at all"
    );
    assert_eq!(
        lines(&builtin, false),
        lines(&program, true),
        "metrics differ from the built-in reward's"
    );
    assert!(weights(&builtin) == weights(&program), "final weights differ");

    // Failing programs: answer 3 requests (initial eval, eval before RL, RL step 1), then fail.
    let failing = fresh_tmp("reward_program", "failing.py");
    std::fs::write(&failing, FAILING).unwrap();
    for (mode, timeout_s, want) in [
        ("crash", 60.0, "exited"),
        ("hang", 2.0, "did not answer within 2 s"),
        ("malformed", 60.0, "malformed output"),
    ] {
        let dir = fresh_tmp("reward_program", mode);
        let cmd = [
            "python3".into(),
            failing.display().to_string(),
            mode.into(),
            "3".into(),
            example(),
        ];
        let t0 = std::time::Instant::now();
        let e = format!(
            "{:#}",
            train(&dir, &program_reward(&cmd, timeout_s), false).unwrap_err()
        );
        println!("{mode} ({:.1} s): {e}", t0.elapsed().as_secs_f64());
        assert!(e.contains("reward program `python3") && e.contains(want), "{e}");
        assert!(e.contains(&format!("stopped before step {}", SFT_STEPS + 2)), "{e}");
        if mode == "crash" {
            assert!(e.contains("lost its database"), "stderr is shown: {e}");
        }
        let ckpt = dir.join(format!("checkpoints/step-{:08}", SFT_STEPS + 1));
        assert!(
            ckpt.is_dir(),
            "no checkpoint of the last finished step in {}",
            dir.display()
        );
        train(&dir, &good, true).unwrap();
        assert_eq!(
            lines(&builtin, false),
            lines(&dir, true),
            "{mode}: the resumed run differs"
        );
        assert!(weights(&builtin) == weights(&dir), "{mode}: resumed weights differ");
    }
}

#[test]
fn bad_program_specs_are_config_errors() {
    let dir = fresh_tmp("reward_program", "bad_spec");
    let text = |f: &str| {
        format!(
            "output_dir = \"{}\"\n[model]\nconfig = \"x.toml\"\n[data]\ntrain = {{ kind = \"arithmetic\", digits = 1, operands = 2 }}\n[[rewards]]\nfunction = {f}\n",
            dir.display()
        )
    };
    for (f, want) in [
        ("{ kind = \"program\", command = [] }", "'command'"),
        ("{ kind = \"program\", command = [\"x\"], timeout_s = 0 }", "timeout_s"),
        ("{ kind = \"program\", comand = [\"x\"] }", "comand"),
        ("{ kind = \"regex\", pattern = \"(\" }", "does not compile"),
        ("{ kind = \"multiple_choice\", letters = \"ab\" }", "upper-case"),
    ] {
        let e = entrl::config::RunFile::parse(&text(f), "bad.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains(want) && e.contains("rewards"), "{f}: {e}");
    }
    assert!(!dir.exists(), "nothing is left behind");
}

/// Answers like the example for `after` requests, then fails as `mode` says.
const FAILING: &str = r#"
import importlib.util, json, sys, time
mode, after, example = sys.argv[1], int(sys.argv[2]), sys.argv[3]
spec = importlib.util.spec_from_file_location("example", example)
ex = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ex)
for n, line in enumerate(sys.stdin):
    if n >= after:
        if mode == "crash":
            print("boom: the reward server lost its database", file=sys.stderr, flush=True)
            sys.exit(3)
        if mode == "hang":
            time.sleep(3600)
        if mode == "malformed":
            print("rewards: 1, 0", flush=True)
            continue
    batch = json.loads(line)["batch"]
    print(json.dumps({"rewards": [ex.score(x)[1] for x in batch]}), flush=True)
"#;
