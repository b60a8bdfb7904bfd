//! Sweep expansion (zip × grid × seeds, readable labels with a config hash), the run loop's
//! skip / resume / failure handling (with a stand-in trainer, no model), and the aggregate's
//! intervals.

use std::path::Path;
use std::sync::Mutex;

use entrl::sweep::{ArmState, SweepFile, arm_state, check_distinct, mean_ci, run_arms};
use entrl_tests::root;

fn write_sweep(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let base = format!(
        r#"
output_dir = "unused"
[model]
config = "{}"
tokenizer = "{}"
[data]
train = {{ kind = "arithmetic", digits = 1, operands = 2 }}
[rl]
steps = 3
"#,
        root().join("configs/model/tiny.toml").display(),
        root().join("data/tokenizer.json").display()
    );
    std::fs::write(dir.join("base.toml"), base).unwrap();
    let sweep = format!(
        r#"
base = "base.toml"
output_dir = "{}"
seeds = [0, 1]
[set]
"rl.num_generations" = 4
[zip]
label = ["plain", "filtered"]
"entropy.filter.enabled" = [false, true]
[grid]
"rl.learning_rate" = [1e-5, 3e-5]
"#,
        dir.join("out").display()
    );
    let p = dir.join("sweep.toml");
    std::fs::write(&p, sweep).unwrap();
    p
}

#[test]
fn arms_expand_zip_grid_and_seeds_with_distinct_directories() {
    let dir = std::env::temp_dir().join(format!("entrl-sweep-expand-{}", std::process::id()));
    let p = write_sweep(&dir);
    let sweep = SweepFile::load(&p).unwrap();
    let arms = sweep.arms(&p).unwrap();
    assert_eq!(arms.len(), 2 * 2 * 2);
    let labels: Vec<String> = arms.iter().map(|a| format!("{}/{}", a.label, a.seed)).collect();
    assert_eq!(labels[0], "plain-learning_rate=0.00001/0");
    assert_eq!(labels[7], "filtered-learning_rate=0.00003/1");
    check_distinct(&arms).unwrap();
    let a = &arms[7];
    assert!(a.run.entropy.filter.enabled && a.run.rl.learning_rate == 3e-5 && a.run.seed == 1);
    assert_eq!(a.run.rl.num_generations, 4, "[set] applies to every arm");
    assert_eq!(a.run.output_dir, a.dir);
    // the hash is a function of the resolved config: expanding again gives the same directories
    let again = sweep.arms(&p).unwrap();
    assert!(arms.iter().zip(&again).all(|(x, y)| x.dir == y.dir));
    // a bad key in an axis fails naming it
    std::fs::write(
        &p,
        std::fs::read_to_string(&p)
            .unwrap()
            .replace("\"rl.learning_rate\"", "\"rl.learning_rat\""),
    )
    .unwrap();
    let err = SweepFile::load(&p).unwrap().arms(&p).unwrap_err().to_string();
    assert!(err.contains("learning_rat"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_axis_or_seed_list_is_an_error_naming_the_key() {
    // an empty list would multiply the arms by zero: a sweep that is accepted and runs nothing
    let dir = std::env::temp_dir().join(format!("entrl-sweep-empty-{}", std::process::id()));
    let p = write_sweep(&dir);
    let good = std::fs::read_to_string(&p).unwrap();
    for (from, to, key) in [
        (
            "\"rl.learning_rate\" = [1e-5, 3e-5]",
            "\"rl.learning_rate\" = []",
            "grid.rl.learning_rate",
        ),
        (
            "\"entropy.filter.enabled\" = [false, true]\n",
            "\"rl.beta\" = []\n",
            "zip.rl.beta",
        ),
        ("seeds = [0, 1]", "seeds = []", "seeds"),
        ("seeds = [0, 1]", "seeds = [0, 1]\nbaseline = \"plain\"", "baseline"),
    ] {
        std::fs::write(&p, good.replace(from, to)).unwrap();
        let err = SweepFile::load(&p).unwrap().arms(&p).unwrap_err().to_string();
        assert!(
            err.contains("sweep.toml")
                && err.contains(&format!("key '{key}'"))
                && (err.contains("empty") || err.contains("names no arm: 'plain'")),
            "{err}"
        );
    }
    assert!(!dir.join("out").exists(), "nothing written");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_loop_skips_done_resumes_interrupted_records_failures() {
    let dir = std::env::temp_dir().join(format!("entrl-sweep-loop-{}", std::process::id()));
    let p = write_sweep(&dir);
    let sweep = SweepFile::load(&p).unwrap();
    let arms = sweep.arms(&p).unwrap();
    // before: arm 0 finished, arm 1 interrupted (metrics, no summary)
    std::fs::create_dir_all(&arms[0].dir).unwrap();
    std::fs::write(arms[0].dir.join("metrics.jsonl"), "").unwrap();
    std::fs::write(arms[0].dir.join("summary.json"), "{}").unwrap();
    std::fs::create_dir_all(&arms[1].dir).unwrap();
    std::fs::write(arms[1].dir.join("metrics.jsonl"), "").unwrap();
    assert_eq!(arm_state(&arms[1].dir), ArmState::Interrupted);
    let calls = Mutex::new(vec![]);
    let bad = arms[2].dir.clone();
    let boom = arms[3].dir.clone();
    let outcomes = run_arms(&sweep, &arms, &|run, resume| {
        calls.lock().unwrap().push((run.output_dir.clone(), resume));
        if run.output_dir == bad {
            anyhow::bail!("planted failure");
        }
        if run.output_dir == boom {
            panic!("planted panic");
        }
        std::fs::create_dir_all(&run.output_dir)?;
        std::fs::write(run.output_dir.join("summary.json"), "{}")?;
        Ok(())
    })
    .unwrap();
    let calls = calls.into_inner().unwrap();
    assert_eq!(calls.len(), 7, "the finished arm is not trained again");
    assert!(calls.contains(&(arms[1].dir.clone(), true)), "interrupted arm resumes");
    let status = |i: usize| outcomes.iter().find(|o| o.dir == arms[i].dir).unwrap().status.clone();
    assert_eq!(status(0), "skipped");
    assert_eq!(status(1), "resumed");
    assert_eq!(status(2), "failed");
    assert_eq!(status(3), "failed");
    assert_eq!(status(4), "trained");
    let failures = std::fs::read_to_string(dir.join("out/failures.jsonl")).unwrap();
    assert!(failures.contains("planted failure") && failures.contains("planted panic"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn confidence_intervals_use_student_t() {
    let (m, ci) = mean_ci(&[1.0, 2.0, 3.0]);
    assert_eq!(m, 2.0);
    assert!((ci - 4.303 / 3f64.sqrt()).abs() < 1e-12); // s = 1, t(0.975, 2) = 4.303
    assert_eq!(mean_ci(&[5.0]), (5.0, 0.0));
}
