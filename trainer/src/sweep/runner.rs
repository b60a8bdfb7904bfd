//! Running a sweep's arms: which are done, interrupted or new; training them `parallel` at a
//! time; recording failures and going on.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use anyhow::Context;

use super::{Arm, SweepFile};
use crate::config::RunFile;

/// State of an arm on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmState {
    /// `summary.json` exists.
    Done,
    /// Started (metrics exist) but not finished: resume.
    Interrupted,
    /// Not started.
    New,
}

/// What state the arm's directory is in.
pub fn arm_state(dir: &Path) -> ArmState {
    if dir.join("summary.json").exists() {
        ArmState::Done
    } else if dir.join("metrics.jsonl").exists() {
        ArmState::Interrupted
    } else {
        ArmState::New
    }
}

/// Outcome of one arm in this invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmOutcome {
    /// Arm label.
    pub label: String,
    /// Seed.
    pub seed: u64,
    /// Run directory.
    pub dir: PathBuf,
    /// `skipped` (already done), `trained`, `resumed` or `failed`.
    pub status: String,
    /// Error message of a failed arm.
    pub error: Option<String>,
}

/// Trains every arm not yet done, `parallel` at a time, with `train_one(run, resume)`; failures
/// (errors and panics) are recorded in `OUT/failures.jsonl` and do not stop the sweep.
pub fn run_arms(
    sweep: &SweepFile,
    arms: &[Arm],
    train_one: &(dyn Fn(RunFile, bool) -> anyhow::Result<()> + Sync),
) -> anyhow::Result<Vec<ArmOutcome>> {
    std::fs::create_dir_all(&sweep.output_dir).with_context(|| format!("creating {}", sweep.output_dir.display()))?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..sweep.parallel.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(arm) = arms.get(i) else { break };
                    let state = arm_state(&arm.dir);
                    let (status, error) = if state == ArmState::Done {
                        ("skipped", None)
                    } else {
                        let resume = state == ArmState::Interrupted;
                        tracing::info!(
                            "sweep arm {} seed {} ({})",
                            arm.label,
                            arm.seed,
                            if resume { "resuming" } else { "new" }
                        );
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            train_one(arm.run.clone(), resume)
                        }));
                        match r {
                            Ok(Ok(())) => (if resume { "resumed" } else { "trained" }, None),
                            Ok(Err(e)) => ("failed", Some(format!("{e:#}"))),
                            Err(p) => (
                                "failed",
                                Some(
                                    p.downcast_ref::<String>()
                                        .cloned()
                                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                        .unwrap_or_else(|| "panic".into()),
                                ),
                            ),
                        }
                    };
                    outcomes.lock().expect("outcomes").push(ArmOutcome {
                        label: arm.label.clone(),
                        seed: arm.seed,
                        dir: arm.dir.clone(),
                        status: status.into(),
                        error,
                    });
                }
            });
        }
    });
    let mut out = outcomes.into_inner().expect("outcomes");
    out.sort_by(|a, b| (&a.label, a.seed).cmp(&(&b.label, b.seed)));
    let failed: Vec<String> = out
        .iter()
        .filter(|o| o.status == "failed")
        .map(|o| serde_json::to_string(o).expect("json"))
        .collect();
    if !failed.is_empty() {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sweep.output_dir.join("failures.jsonl"))?;
        for l in &failed {
            writeln!(f, "{l}")?;
        }
    }
    Ok(out)
}
