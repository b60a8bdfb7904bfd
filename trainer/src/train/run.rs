//! A run's summary, and the checkpoint writing the trainer does.

use std::collections::HashMap;
use std::path::PathBuf;

use burn::module::ParamId;
use burn::tensor::backend::AutodiffBackend;

use crate::checkpoint::{self, TrainerState};
use crate::model::{self, Transformer, weights};
use crate::optim::AdamW;
use crate::plan::RunPlan;
use crate::tokenizer::copy_tokenizer_files;

/// The figures of a finished run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// Run directory.
    pub run_dir: PathBuf,
    /// Held-out greedy accuracy before any training.
    pub initial_accuracy: Option<f64>,
    /// After the warm-up (= before RL).
    pub pre_rl_accuracy: Option<f64>,
    /// After RL.
    pub final_accuracy: f64,
    /// Held-out problems.
    pub eval_problems: usize,
    /// Optimizer steps.
    pub global_steps: u64,
    /// Steps skipped for a non-finite loss or gradient.
    pub skipped_steps: u64,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
}

/// HF name of every parameter id (optimizer state is saved by name).
pub(super) fn param_names(cfg: &model::ModelConfig) -> HashMap<ParamId, String> {
    weights::expected_shapes(cfg)
        .into_iter()
        .map(|(n, _)| (weights::param_id(&n), n))
        .collect()
}

/// Saves model (HF layout), optimizer moments and trainer state into a new checkpoint.
pub(super) fn save_checkpoint<AB: AutodiffBackend>(
    plan: &RunPlan,
    model: &Transformer<AB>,
    opt: &AdamW<AB::InnerBackend>,
    state: &TrainerState,
) -> anyhow::Result<()> {
    let names = param_names(model.config());
    let saving = &plan.file.checkpoint;
    checkpoint::save(plan.run_dir(), state.global_step, saving.keep_last, |dir| {
        model::save_hf_dir(model, dir)?;
        copy_tokenizer_files(&plan.model.tokenizer_json, dir)?;
        if saving.save_optimizer {
            weights::write_safetensors(&opt.state_weights(&names), &dir.join("optimizer.safetensors"))?;
        }
        std::fs::write(dir.join("trainer_state.json"), serde_json::to_string_pretty(state)?)?;
        Ok(())
    })?;
    Ok(())
}
