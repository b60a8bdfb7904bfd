//! The run plan: a [`RunFile`] — what the user typed — resolved once into what training and
//! evaluation consume: the model's tokenizer (one rule), prompt format and end ids; the problems;
//! the reward set; sampling for rollouts and for evaluation, spelled one way ([`Sampling`]); the
//! policy loss and the objective; each phase's optimiser ([`PhaseOptim`]); the non-finite-step
//! limit that governs both phases. Every input file is read and checked here, before any work.
//!
//! `entrl train` resolves a [`RunPlan`]; `entrl eval` an [`EvalPlan`] (shared with the trainer's
//! held-out evaluation) and one [`ModelInputs`] per checkpoint it evaluates.

use std::path::{Path, PathBuf};

use anyhow::bail;
use burn::tensor::backend::Backend;
use entrl_rewards::{RewardSet, SignalParams};

use crate::config::{RunFile, SourceSpec};
use crate::data::jsonl::JsonlSource;
use crate::data::tasks::SyntheticSource;
use crate::data::{Problem, ProblemSource, PromptFormat};
use crate::model::ModelConfig;
use crate::objectives::{Objective, PolicyLossConfig};
use crate::optim::{self, AdamW, AdamWConfig};
use crate::rollout::SamplingParams;
use crate::tokenizer::{Tokenizer, tokenizer_dir, tokenizer_json};

/// How completions are sampled, for rollouts (`[rl]`) and sampled evaluation (`[eval]`) alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Softmax temperature (the scoring pass of an update uses the rollout's).
    pub temperature: f64,
    /// Nucleus mass (1 = off).
    pub top_p: f64,
    /// Top-k (0 = off).
    pub top_k: usize,
    /// Top-k log-probs recorded per generated token (`entropy.top_logprobs`).
    pub top_logprobs: usize,
    /// Longest completion.
    pub max_new_tokens: usize,
}

impl Sampling {
    /// The sampler's parameters (statistics of the raw model, no repetition penalty).
    pub fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            top_logprobs: self.top_logprobs,
            ..Default::default()
        }
    }
}

/// One phase's optimiser: its schedule, clip and AdamW settings.
#[derive(Debug, Clone)]
pub struct PhaseOptim {
    /// Optimizer steps of the phase (the cosine schedule's length).
    pub steps: u64,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// Final lr as a fraction of the peak.
    pub min_lr_ratio: f64,
    /// Global-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// β₁, β₂, ε, weight decay.
    pub adamw: AdamWConfig,
}

impl PhaseOptim {
    /// Learning rate at step `phase_step` of the phase.
    pub fn lr_at(&self, phase_step: u64) -> f64 {
        optim::lr_at(
            phase_step,
            self.learning_rate,
            self.warmup_steps,
            self.steps,
            self.min_lr_ratio,
        )
    }

    /// A fresh optimizer for the phase.
    pub fn optimizer<B: Backend>(&self) -> AdamW<B> {
        AdamW::new(self.adamw.clone())
    }
}

/// What a model brings to a run: its tokenizer, the prompt format rendered with it, its end ids.
pub struct ModelInputs {
    /// The tokenizer.json used (by [`tokenizer_json`]'s rule).
    pub tokenizer_json: PathBuf,
    /// Tokenizer.
    pub tok: Tokenizer,
    /// Prompt format (`data.template`).
    pub prompts: PromptFormat,
    /// Ids that end a completion.
    pub eos: Vec<u32>,
}

impl ModelInputs {
    /// The inputs of the model with config `cfg` in `model_dir` (`None`: built from scratch).
    pub fn resolve(file: &RunFile, model_dir: Option<&Path>, cfg: &ModelConfig) -> anyhow::Result<Self> {
        let path = tokenizer_json(file.model.tokenizer.as_deref(), model_dir);
        let tok = Tokenizer::from_file(&path)?;
        if tok.vocab_size > cfg.vocab_size {
            bail!(
                "{}: tokenizer has {} tokens, the model only {}",
                path.display(),
                tok.vocab_size,
                cfg.vocab_size
            );
        }
        let prompts = file.data.prompt_format(tokenizer_dir(&path))?;
        Ok(Self {
            eos: tok.end_ids(cfg.eos_ids()),
            tokenizer_json: path,
            tok,
            prompts,
        })
    }
}

/// Held-out evaluation: the problems, how they are judged and sampled.
pub struct EvalPlan {
    /// The first `eval.num_problems` problems of `data.eval` (default `data.train`), unshuffled.
    pub problems: Vec<Problem>,
    /// Reward functions (the first accuracy-type verdict decides correctness).
    pub rewards: RewardSet,
    /// Sampled evaluation (`eval.temperature`, `eval.top_p`, `eval.top_k`); its
    /// `max_new_tokens` (`eval.max_completion_length`, default `rl.max_completion_length`) also
    /// bounds greedy decoding.
    pub sampled: Sampling,
    /// Parameters of the completions' signals.
    pub signals: SignalParams,
    /// The decode loop's shapes and sampler placement on the run's device.
    pub policy: crate::rollout::DecodePolicy,
}

impl EvalPlan {
    /// Reads the held-out problems.
    pub fn resolve(file: &RunFile) -> anyhow::Result<Self> {
        let spec = file.data.eval.as_ref().unwrap_or(&file.data.train);
        let problems = first_problems(spec, file.data.eval_seed, file.eval.num_problems)?;
        let e = &file.eval;
        Ok(Self {
            problems,
            rewards: reward_set(file),
            sampled: Sampling {
                temperature: e.temperature,
                top_p: e.top_p,
                top_k: e.top_k,
                top_logprobs: file.entropy.top_logprobs,
                max_new_tokens: e.max_completion_length.unwrap_or(file.rl.max_completion_length),
            },
            signals: file.entropy.signal_params(),
            policy: file.decode_policy(),
        })
    }
}

/// Problems whose greedy decodes calibrate a tree decoder: the first `eval.calibration_problems`
/// of `data.train`, unshuffled.
pub fn calibration_problems(file: &RunFile) -> anyhow::Result<Vec<Problem>> {
    first_problems(&file.data.train, file.seed, file.eval.calibration_problems)
}

/// A training run, resolved.
pub struct RunPlan {
    /// What the user typed (saved as the run's `config.toml`; settings no other field resolves).
    pub file: RunFile,
    /// The configured model's config (`model.path`'s config.json, or `model.config`).
    pub model_config: ModelConfig,
    /// Its tokenizer, prompt format and end ids.
    pub model: ModelInputs,
    /// Training problems (JSONL files shuffled per epoch with the run's seed).
    pub train: Box<dyn ProblemSource>,
    /// Held-out evaluation.
    pub eval: EvalPlan,
    /// Rollout sampling (`[rl]`).
    pub rollout: Sampling,
    /// The decode loop's layout and the training batches' length multiple on the run's device.
    pub decode: crate::rollout::DecodePolicy,
    /// What the RL phase optimises (`entropy.objective`).
    pub objective: Objective,
    /// The policy-gradient loss (`[rl]`, `entropy.cov_control`).
    pub loss: PolicyLossConfig,
    /// The supervised warm-up's optimiser.
    pub sft: PhaseOptim,
    /// The RL phase's optimiser.
    pub rl: PhaseOptim,
    /// Consecutive non-finite steps (either phase) that abort the run.
    pub max_consecutive_nonfinite: usize,
}

impl RunPlan {
    /// Reads every input `file` names (model config, tokenizer, chat template, data) and
    /// resolves the settings; a bad file fails here, naming it.
    pub fn resolve(file: RunFile) -> anyhow::Result<Self> {
        let model_config = match (&file.model.path, &file.model.config) {
            (Some(dir), _) => crate::model::read_config(dir)?,
            (None, Some(c)) => crate::model::read_model_config_file(c)?,
            (None, None) => unreachable!("validated: one of model.path, model.config"),
        };
        let model = ModelInputs::resolve(&file, file.model.path.as_deref(), &model_config)?;
        let train = open_source(&file.data.train, file.seed, true)?;
        let eval = EvalPlan::resolve(&file)?;
        let (r, s) = (&file.rl, &file.sft);
        Ok(Self {
            decode: file.decode_policy(),
            rollout: Sampling {
                temperature: r.temperature,
                top_p: r.top_p,
                top_k: r.top_k,
                top_logprobs: file.entropy.top_logprobs,
                max_new_tokens: r.max_completion_length,
            },
            objective: file.entropy.objective,
            loss: PolicyLossConfig {
                loss_type: r.loss_type,
                epsilon: r.epsilon,
                epsilon_high: r.epsilon_high(),
                beta: r.beta,
                max_completion_length: r.max_completion_length,
                cov_control: file.entropy.cov_control,
            },
            sft: PhaseOptim {
                steps: s.steps,
                learning_rate: s.learning_rate,
                warmup_steps: s.warmup_steps,
                min_lr_ratio: s.min_lr_ratio,
                max_grad_norm: s.max_grad_norm,
                adamw: adamw(s.weight_decay, s.adam_beta2),
            },
            rl: PhaseOptim {
                steps: r.steps,
                learning_rate: r.learning_rate,
                warmup_steps: r.warmup_steps,
                min_lr_ratio: r.min_lr_ratio,
                max_grad_norm: r.max_grad_norm,
                adamw: adamw(r.weight_decay, r.adam_beta2),
            },
            max_consecutive_nonfinite: file.max_consecutive_nonfinite,
            model_config,
            model,
            train,
            eval,
            file,
        })
    }

    /// The reward functions (`[[rewards]]`), shared by rollouts and evaluation.
    pub fn rewards(&self) -> &RewardSet {
        &self.eval.rewards
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.file.output_dir
    }
}

fn adamw(weight_decay: f64, beta2: f64) -> AdamWConfig {
    AdamWConfig {
        weight_decay,
        beta2,
        ..Default::default()
    }
}

/// The reward functions and weights of `[[rewards]]`.
pub(crate) fn reward_set(file: &RunFile) -> RewardSet {
    RewardSet::new(file.rewards.iter().map(|e| (e.function.clone(), e.weight)).collect())
}

/// The problem source a spec names (`shuffle`: seeded epoch shuffling of JSONL files).
fn open_source(spec: &SourceSpec, seed: u64, shuffle: bool) -> anyhow::Result<Box<dyn ProblemSource>> {
    Ok(match spec {
        SourceSpec::Synthetic(t) => Box::new(SyntheticSource { task: t.clone(), seed }),
        SourceSpec::Jsonl(j) => Box::new(JsonlSource::load(
            &j.path,
            j.format,
            &j.fields,
            j.data_source.as_deref(),
            shuffle.then_some(seed),
        )?),
    })
}

/// The first `n` problems of a source (all of a shorter file), unshuffled.
pub(crate) fn first_problems(spec: &SourceSpec, seed: u64, n: usize) -> anyhow::Result<Vec<Problem>> {
    let src = open_source(spec, seed, false)?;
    let n = src.len().map_or(n, |l| l.min(n));
    Ok((0..n as u64).map(|i| src.get(i)).collect())
}
