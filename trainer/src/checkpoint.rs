//! Checkpoints: Hugging Face weights + optimizer moments + trainer state, written atomically.
//!
//! A checkpoint is written into `step-NNNNNNNN.tmp/` and renamed to `step-NNNNNNNN/` only when
//! complete, so a kill at any moment leaves the previous checkpoint as the latest loadable one.
//! The last `keep_last` are kept.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which part of the run a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Supervised warm-up.
    Sft,
    /// Reinforcement learning.
    Rl,
    /// Finished.
    Done,
}

/// Everything besides weights and optimizer moments that the future of a run depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Current phase.
    pub phase: Phase,
    /// Steps completed in the current phase.
    pub phase_step: u64,
    /// Optimizer steps completed over the whole run.
    pub global_step: u64,
    /// Next problem index of the training source.
    pub data_cursor: u64,
    /// AdamW step count of the current phase's optimizer.
    pub optimizer_step: u64,
    /// Consecutive non-finite steps so far.
    pub nonfinite_in_row: usize,
    /// Held-out greedy accuracy of the model before any training.
    pub initial_accuracy: Option<f64>,
    /// Held-out greedy accuracy after the warm-up (before RL).
    pub pre_rl_accuracy: Option<f64>,
    /// The adaptive entropy coefficient's current value (`entropy.adaptive`; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy_coef: Option<f64>,
}

impl TrainerState {
    /// A run's first state.
    pub fn new(has_sft: bool) -> Self {
        Self {
            phase: if has_sft { Phase::Sft } else { Phase::Rl },
            phase_step: 0,
            global_step: 0,
            data_cursor: 0,
            optimizer_step: 0,
            nonfinite_in_row: 0,
            initial_accuracy: None,
            pre_rl_accuracy: None,
            entropy_coef: None,
        }
    }
}

/// `run_dir/checkpoints`.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// Complete checkpoints, oldest first, as (global step, path).
pub fn list(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(checkpoints_dir(run_dir)) else {
        return vec![];
    };
    let mut out: Vec<(u64, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.parse().ok()?; // ".tmp" suffix fails to parse
            e.path().join("trainer_state.json").exists().then_some((step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The newest complete checkpoint.
pub fn latest(run_dir: &Path) -> Option<(u64, PathBuf)> {
    list(run_dir).pop()
}

/// Writes a checkpoint with `write_contents(tmp_dir)` filling the directory, then renames it into
/// place and prunes old ones.
pub fn save(
    run_dir: &Path,
    step: u64,
    keep_last: usize,
    write_contents: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<PathBuf> {
    let dir = checkpoints_dir(run_dir);
    std::fs::create_dir_all(&dir)?;
    let final_dir = dir.join(format!("step-{step:08}"));
    let tmp = dir.join(format!("step-{step:08}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    write_contents(&tmp)?;
    // flush file contents before the rename makes the checkpoint visible
    for e in std::fs::read_dir(&tmp)? {
        std::fs::File::open(e?.path())?.sync_all()?;
    }
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir)?;
    }
    std::fs::rename(&tmp, &final_dir)?;
    let all = list(run_dir);
    for (_, old) in all.iter().take(all.len().saturating_sub(keep_last)) {
        std::fs::remove_dir_all(old)?;
    }
    Ok(final_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_write_leaves_previous_latest_and_pruning_keeps_k() {
        let run = std::env::temp_dir().join(format!("entrl_ckpt_test_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        let write = |d: &Path| -> anyhow::Result<()> {
            std::fs::write(d.join("trainer_state.json"), "{}")?;
            Ok(())
        };
        for s in [10, 20, 30] {
            save(&run, s, 2, write).unwrap();
        }
        assert_eq!(list(&run).iter().map(|x| x.0).collect::<Vec<_>>(), vec![20, 30]);
        // a kill in the middle of writing step 40: the .tmp directory exists, half-written
        let tmp = checkpoints_dir(&run).join("step-00000040.tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("model.safetensors"), b"partial").unwrap();
        assert_eq!(latest(&run).unwrap().0, 30);
        // a directory without trainer_state.json is not a checkpoint either
        std::fs::create_dir_all(checkpoints_dir(&run).join("step-00000050")).unwrap();
        assert_eq!(latest(&run).unwrap().0, 30);
        // the next save of step 40 replaces the stale .tmp
        save(&run, 40, 2, write).unwrap();
        assert_eq!(latest(&run).unwrap().0, 40);
        std::fs::remove_dir_all(&run).unwrap();
    }
}
