//! A whole training run (`train`), and what the trainer and its steps share: the step context,
//! problem sources, tokenizer files, optimizer construction and checkpoint writing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::module::ParamId;
use burn::tensor::backend::{AutodiffBackend, Backend};
use entrl_rewards::RewardSet;

use super::Trainer;
use super::checkpoint::{self, Phase, TrainerState};
use super::optim::{AdamW, AdamWConfig};
use crate::config::{RunFile, SourceSpec};
use crate::data::jsonl::JsonlSource;
use crate::data::tasks::SyntheticSource;
use crate::data::{Problem, ProblemSource, PromptFormat};
use crate::model::{self, Transformer, weights};
use crate::tokenizer::Tokenizer;

/// What every step needs besides the model and optimizer.
pub struct Ctx<B: Backend> {
    /// The resolved config.
    pub run: RunFile,
    /// Tokenizer.
    pub tok: Tokenizer,
    /// Prompt format (`data.template`).
    pub prompts: PromptFormat,
    /// Training problems.
    pub train: Box<dyn ProblemSource>,
    /// Held-out problems.
    pub eval: Vec<Problem>,
    /// Reward functions.
    pub rewards: RewardSet,
    /// Ids that end a completion.
    pub eos: Vec<u32>,
    /// Frozen reference policy (only when `rl.beta > 0`).
    pub reference: Option<Transformer<B>>,
}

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

/// The problem source a spec names (`shuffle`: seeded epoch shuffling of JSONL files).
pub fn source(spec: &SourceSpec, seed: u64, shuffle: bool) -> anyhow::Result<Box<dyn ProblemSource>> {
    Ok(match spec {
        SourceSpec::Synthetic(t) => Box::new(SyntheticSource { task: t.clone(), seed }),
        SourceSpec::Jsonl(j) => Box::new(JsonlSource::load(
            &j.path,
            j.format,
            j.data_source.as_deref(),
            shuffle.then_some(seed),
        )?),
    })
}

/// The run's tokenizer.json.
pub fn tokenizer_path(run: &RunFile) -> PathBuf {
    run.model.tokenizer.clone().unwrap_or_else(|| match &run.model.path {
        Some(p) => p.join("tokenizer.json"),
        None => PathBuf::from("data/tokenizer.json"),
    })
}

/// The folder of a tokenizer.json: where its `tokenizer_config.json` (chat template, special
/// tokens) lives.
pub fn tokenizer_dir(tokenizer_json: &Path) -> &Path {
    match tokenizer_json.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Files beside a model's tokenizer.json that a checkpoint carries along (chat template and
/// special tokens), copied when present.
const TOKENIZER_FILES: [&str; 3] = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"];

/// Copies the tokenizer files of `tokenizer_json`'s folder into `dir`.
pub fn copy_tokenizer_files(tokenizer_json: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::copy(tokenizer_json, dir.join("tokenizer.json"))
        .with_context(|| format!("copying {}", tokenizer_json.display()))?;
    let src = tokenizer_dir(tokenizer_json);
    for name in &TOKENIZER_FILES[1..] {
        if src.join(name).exists() {
            std::fs::copy(src.join(name), dir.join(name)).with_context(|| format!("copying {name}"))?;
        }
    }
    Ok(())
}

/// HF name of every parameter id (optimizer state is saved by name).
pub(super) fn param_names(cfg: &model::ModelConfig) -> HashMap<ParamId, String> {
    weights::expected_shapes(cfg)
        .into_iter()
        .map(|(n, _)| (weights::param_id(&n), n))
        .collect()
}

pub(super) fn new_optimizer<B: Backend>(run: &RunFile, phase: Phase) -> AdamW<B> {
    let (wd, b2) = match phase {
        Phase::Sft => (run.sft.weight_decay, 0.999),
        _ => (run.rl.weight_decay, run.rl.adam_beta2),
    };
    AdamW::new(AdamWConfig {
        weight_decay: wd,
        beta2: b2,
        ..Default::default()
    })
}

/// Saves model (HF layout), optimizer moments and trainer state into a new checkpoint.
pub(super) fn save_checkpoint<AB: AutodiffBackend>(
    run_dir: &Path,
    ctx: &Ctx<AB::InnerBackend>,
    model: &Transformer<AB>,
    opt: &AdamW<AB::InnerBackend>,
    state: &TrainerState,
) -> anyhow::Result<()> {
    let names = param_names(model.config());
    checkpoint::save(run_dir, state.global_step, ctx.run.checkpoint.keep_last, |dir| {
        model::save_hf_dir(model, dir)?;
        copy_tokenizer_files(&tokenizer_path(&ctx.run), dir)?;
        if ctx.run.checkpoint.save_optimizer {
            weights::write_safetensors(&opt.state_weights(&names), &dir.join("optimizer.safetensors"))?;
        }
        std::fs::write(dir.join("trainer_state.json"), serde_json::to_string_pretty(state)?)?;
        Ok(())
    })?;
    Ok(())
}

/// Trains according to `run` in `run.output_dir`; `resume` continues from its latest checkpoint,
/// `overwrite` replaces an existing run.
pub fn train<AB: AutodiffBackend>(
    run: RunFile,
    resume: bool,
    overwrite: bool,
    device: &AB::Device,
) -> anyhow::Result<RunSummary> {
    let mut trainer = Trainer::<AB>::open(run, resume, overwrite, device)?;
    while trainer.advance()? {}
    trainer.finish()
}
