//! The sections of a run file. Every struct rejects unknown keys; defaults follow TRL/verl where
//! the meaning is the same (CONVENTIONS.md), and docs/METHODS.md's assumptions are values here.

use std::path::PathBuf;

use entrl_rewards::{Extractor, RewardFn};
use serde::{Deserialize, Serialize};

use crate::data::Template;
use crate::objectives::{AdvantageEstimator, LossType, ScaleRewards};

pub use super::source::{JsonlSpec, SourceSpec};

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// Seeds model init, data order and sampling.
    #[serde(default)]
    pub seed: u64,
    /// `cpu` or `cuda:N`, or a list of GPUs for data-parallel training (`["cuda:0", "cuda:1"]`).
    #[serde(default)]
    pub device: crate::backend::DeviceField,
    /// Data-parallel workers on each listed device (2 on one device: a CPU test of the parallel
    /// path, or a one-GPU smoke test). Workers split each update's micro-batches.
    #[serde(default = "d_workers")]
    pub workers_per_device: usize,
    /// Compute dtype of the gradient passes (SFT steps, RL updates): `"f32"` (the reference) or
    /// `"bf16"` (matmuls and activations in bf16, master weights, gradients and AdamW state in f32;
    /// norms and softmaxes in f32). Rollouts, evaluation and the reference model stay f32.
    #[serde(default)]
    pub precision: crate::model::transformer::Precision,
    /// Abort after this many consecutive optimizer steps (SFT or RL) with a NaN/infinite loss or
    /// gradient; each such step is skipped.
    #[serde(default = "d_max_nonfinite")]
    pub max_consecutive_nonfinite: usize,
    /// Run directory (config, metrics, checkpoints).
    pub output_dir: PathBuf,
    /// The policy.
    pub model: ModelSection,
    /// Train and held-out problems.
    pub data: DataSection,
    /// Reward functions and weights.
    #[serde(default = "d_rewards")]
    pub rewards: Vec<RewardEntry>,
    /// Supervised warm-up (steps = 0: none).
    #[serde(default)]
    pub sft: SftSection,
    /// Reinforcement learning.
    #[serde(default)]
    pub rl: RlSection,
    /// Held-out evaluation.
    #[serde(default)]
    pub eval: EvalSection,
    /// Checkpointing.
    #[serde(default)]
    pub checkpoint: CheckpointSection,
    /// Entropy objectives, regulariser, EDIS hooks and trajectory artifacts.
    #[serde(default)]
    pub entropy: super::entropy::EntropySection,
    /// Step lines in logs and decoded sample completions.
    #[serde(default)]
    pub logging: LoggingSection,
    /// Entropy Sentinel's domains and settings (`entrl sentinel fit/estimate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<super::sentinel::SentinelSection>,
    /// A fitted Sentinel watching held-out accuracy during training, without labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<super::sentinel::MonitorSection>,
    /// The Stepwise Informativeness analysis (`entrl analyze sia`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sia: Option<super::sia::SiaSection>,
    /// EDIS's window and thresholds recalibrated on this model (`entrl analyze edis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edis_sweep: Option<super::edis_sweep::EdisSweepSection>,
    /// The decode loop's layout on the device (fixed shapes and device sampling on a GPU).
    #[serde(default)]
    pub decode: super::decode::DecodeSection,
    /// Per-step collapse checks of RL runs (warnings, optional early stop).
    #[serde(default)]
    pub alarms: super::alarms::AlarmsSection,
}

/// What a run shows while it trains (TRL's `logging_steps`, `log_completions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    /// One step line every N steps when stderr is not a terminal (a terminal shows a bar); 0 = none.
    pub logging_steps: u64,
    /// Decoded completions per RL step written to `samples.jsonl` (0 = none).
    pub log_completions: usize,
    /// Show the first of them in the step line.
    pub show_completion: bool,
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self {
            logging_steps: 10,
            log_completions: 4,
            show_completion: false,
        }
    }
}

fn d_max_nonfinite() -> usize {
    5
}

fn d_workers() -> usize {
    1
}
fn d_rewards() -> Vec<RewardEntry> {
    vec![RewardEntry {
        function: RewardFn::Accuracy {
            extractor: Extractor::Hash,
        },
        weight: 1.0,
    }]
}

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A Hugging Face directory to start from (pretrained).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A from-scratch model config file (HF config.json vocabulary, .toml or .json).
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// tokenizer.json (default: the model directory's, or data/tokenizer.json from scratch).
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
}

/// Training and evaluation problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training problems.
    pub train: SourceSpec,
    /// Held-out problems (default: the training task with `eval_seed`).
    #[serde(default)]
    pub eval: Option<SourceSpec>,
    /// Prompt template: `plain`, `chatml`, `model` (the model's own chat template) or a format
    /// pair `{ prompt = "...{question}...", target = "...{solution}..." }`.
    #[serde(default = "d_template")]
    pub template: Template,
    /// A system turn for chat templates (unset: the template's own default, if it has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Text appended to the question in a chat template's user turn ("" = none).
    #[serde(default = "d_instruction", skip_serializing_if = "is_default_instruction")]
    pub instruction: String,
    /// Seed of the held-out synthetic problems (distinct from training's).
    #[serde(default = "d_eval_seed")]
    pub eval_seed: u64,
}

fn d_template() -> Template {
    Template::PLAIN
}
/// The chat templates' default instruction: the `####` answer line the default verifier reads.
pub const DEFAULT_INSTRUCTION: &str =
    "Solve step by step, then give the final answer on its own line as '#### <number>'.";
fn d_instruction() -> String {
    DEFAULT_INSTRUCTION.into()
}
fn is_default_instruction(s: &String) -> bool {
    s == DEFAULT_INSTRUCTION
}

impl DataSection {
    /// The resolved prompt format; `tokenizer_dir` holds the model's `tokenizer_config.json`.
    pub fn prompt_format(
        &self,
        tokenizer_dir: &std::path::Path,
    ) -> Result<crate::data::PromptFormat, crate::data::chat_template::ChatTemplateError> {
        let instruction = if self.template.is_chat() {
            self.instruction.clone()
        } else {
            String::new()
        };
        crate::data::PromptFormat::resolve(&self.template, self.system.clone(), instruction, tokenizer_dir)
    }
}
fn d_eval_seed() -> u64 {
    1_000_003
}

/// One weighted reward function: `{ function = { kind = "accuracy", extractor = "hash" }, weight = 1.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardEntry {
    /// The function.
    pub function: RewardFn,
    /// Its weight in the total (TRL's `reward_weights`).
    #[serde(default = "d_one")]
    pub weight: f64,
}

fn d_one() -> f64 {
    1.0
}

/// Supervised warm-up on worked solutions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftSection {
    /// Optimizer steps (0 disables the warm-up).
    pub steps: u64,
    /// Problems per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// Final lr as a fraction of the peak (cosine).
    pub min_lr_ratio: f64,
    /// Global-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// Decoupled weight decay on matrices.
    pub weight_decay: f64,
    /// AdamW β₂.
    pub adam_beta2: f64,
}

impl Default for SftSection {
    fn default() -> Self {
        Self {
            steps: 0,
            batch_size: 32,
            learning_rate: 1e-3,
            warmup_steps: 20,
            min_lr_ratio: 0.1,
            max_grad_norm: 1.0,
            weight_decay: 0.0,
            adam_beta2: 0.999,
        }
    }
}

/// GRPO family / RLOO. Names follow TRL's GRPOConfig.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlSection {
    /// Optimizer steps (each on one rollout batch, `num_iterations` times).
    pub steps: u64,
    /// Prompts per rollout batch.
    pub prompts_per_step: usize,
    /// Completions per prompt (G).
    pub num_generations: usize,
    /// Longest completion.
    pub max_completion_length: usize,
    /// Rollout sampling temperature.
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Top-k (0 = off).
    pub top_k: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// Final lr fraction (cosine).
    pub min_lr_ratio: f64,
    /// Token-loss aggregation.
    pub loss_type: LossType,
    /// Lower clip ε.
    pub epsilon: f64,
    /// Upper clip ε (default = `epsilon`; DAPO uses 0.28).
    pub epsilon_high: Option<f64>,
    /// KL weight (k3 to the frozen initial policy); 0 loads no reference model.
    pub beta: f64,
    /// Advantage baseline.
    pub advantage_estimator: AdvantageEstimator,
    /// Std scaling of GRPO advantages.
    pub scale_rewards: ScaleRewards,
    /// ε in `(r − mean)/(std + ε)` (TRL: 1e-4).
    pub advantage_eps: f64,
    /// Updates per rollout batch (old log-probs from before the first).
    pub num_iterations: usize,
    /// Exclude truncated completions from the loss.
    pub mask_truncated_completions: bool,
    /// DAPO dynamic sampling: drop groups with equal rewards and refill.
    pub dynamic_sampling: bool,
    /// Extra rollout rounds dynamic sampling may spend per step.
    pub max_resample_rounds: usize,
    /// Completions per forward/backward (gradient accumulation); 0 = all at once.
    pub micro_batch_size: usize,
    /// Global-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// Decoupled weight decay on matrices.
    pub weight_decay: f64,
    /// AdamW β₂.
    pub adam_beta2: f64,
}

impl Default for RlSection {
    fn default() -> Self {
        Self {
            steps: 0,
            prompts_per_step: 16,
            num_generations: 8,
            max_completion_length: 64,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            learning_rate: 1e-6,
            warmup_steps: 0,
            min_lr_ratio: 1.0,
            loss_type: LossType::Dapo,
            epsilon: 0.2,
            epsilon_high: None,
            beta: 0.0,
            advantage_estimator: AdvantageEstimator::Grpo,
            scale_rewards: ScaleRewards::Group,
            advantage_eps: 1e-4,
            num_iterations: 1,
            mask_truncated_completions: false,
            dynamic_sampling: false,
            max_resample_rounds: 3,
            micro_batch_size: 0,
            max_grad_norm: 1.0,
            weight_decay: 0.0,
            adam_beta2: 0.999,
        }
    }
}

impl RlSection {
    /// Upper clip ε.
    pub fn epsilon_high(&self) -> f64 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }
}

/// Held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Held-out problems (first N of the eval source).
    pub num_problems: usize,
    /// Evaluate greedy accuracy every N RL steps (0: only before and after RL).
    pub every: u64,
    /// Longest completion at evaluation (default: rl.max_completion_length).
    pub max_completion_length: Option<usize>,
    /// `entrl eval`: sampled completions per problem (best-of-N, pass@k, maj@k), besides greedy.
    pub samples: usize,
    /// `entrl eval`: their sampling temperature.
    pub temperature: f64,
    /// `entrl eval`: their nucleus mass.
    pub top_p: f64,
    /// `entrl eval`: their top-k (0 = off).
    pub top_k: usize,
    /// `entrl eval`: k values of pass@k and maj@k (those above `samples` are skipped).
    pub ks: Vec<usize>,
    /// `entrl eval`: k of the EDIS paper's best-k-of-N (pools of m·k samples; 0 = off).
    pub best_k: usize,
    /// `entrl eval`: decoders compared as arms, each with `samples` completions per problem (a
    /// tree: at most `samples` leaves), e.g. `[{ kind = "sample" }, { kind = "em_inf" },
    /// { kind = "adaptive_temperature" }, { kind = "tree" }]`. Empty: no arms.
    pub decoders: Vec<crate::decoding::Decoder>,
    /// `entrl eval`: training problems whose greedy decodes calibrate a tree's percentile τ/δ.
    pub calibration_problems: usize,
    /// `entrl eval`: resamples of the paired bootstrap over problems behind the reports' 95%
    /// intervals (0 = none).
    pub bootstrap: usize,
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            num_problems: 200,
            every: 0,
            max_completion_length: None,
            samples: 16,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            ks: vec![1, 4, 8, 16],
            best_k: 8,
            decoders: vec![],
            calibration_problems: 32,
            bootstrap: 1000,
        }
    }
}

/// Checkpointing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointSection {
    /// Save every N optimizer steps (SFT and RL steps count together); 0 = only at the end.
    pub save_every: u64,
    /// Keep the last K checkpoints.
    pub keep_last: usize,
    /// Save the AdamW moments (twice the weights' size) so the run can be resumed; false writes
    /// weights-only checkpoints, which `--resume` refuses.
    pub save_optimizer: bool,
    /// Data type of `final/model.safetensors`: `f32`, or `bf16` (half the size, for sharing).
    pub final_dtype: WeightsDtype,
}

/// Data type of saved weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightsDtype {
    /// 32-bit floats (exact).
    F32,
    /// bfloat16 (rounded to nearest even).
    Bf16,
}

impl Default for CheckpointSection {
    fn default() -> Self {
        Self {
            save_every: 50,
            keep_last: 2,
            save_optimizer: true,
            final_dtype: WeightsDtype::F32,
        }
    }
}

fn range(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), String> {
    if v.is_nan() || v < lo || v > hi {
        return Err(format!("key '{key}' must be in [{lo}, {hi}], got {v}"));
    }
    Ok(())
}

fn at_least(key: &str, v: usize, lo: usize) -> Result<(), String> {
    if v < lo {
        return Err(format!("key '{key}' must be >= {lo}, got {v}"));
    }
    Ok(())
}

impl RunFile {
    /// Range checks, each naming its key.
    pub fn validate(&self) -> Result<(), String> {
        self.device.specs().map_err(|m| format!("key 'device': {m}"))?;
        at_least("workers_per_device", self.workers_per_device, 1)?;
        self.check_device_sampler()?;
        match (&self.model.path, &self.model.config) {
            (Some(_), Some(_)) => return Err("keys 'model.path' and 'model.config' exclude each other".into()),
            (None, None) => return Err("set 'model.path' (pretrained) or 'model.config' (from scratch)".into()),
            _ => {}
        }
        for (k, spec) in [
            ("data.train", Some(&self.data.train)),
            ("data.eval", self.data.eval.as_ref()),
        ] {
            match spec {
                Some(SourceSpec::Synthetic(t)) => t.validate().map_err(|m| format!("key '{k}': {m}"))?,
                Some(SourceSpec::Jsonl(j)) => j.validate().map_err(|m| format!("key '{k}': {m}"))?,
                None => {}
            }
        }
        if let crate::data::Template::Format(f) = &self.data.template {
            if !f.prompt.contains("{question}") {
                return Err("key 'data.template.prompt' must contain '{question}'".into());
            }
            if !f.target.contains("{solution}") {
                return Err("key 'data.template.target' must contain '{solution}'".into());
            }
        }
        for (i, r) in self.rewards.iter().enumerate() {
            range(&format!("rewards[{i}].weight"), r.weight, -100.0, 100.0)?;
            r.function
                .validate()
                .map_err(|m| format!("key 'rewards[{i}].function': {m}"))?;
        }
        let s = &self.sft;
        at_least("sft.batch_size", s.batch_size, 1)?;
        range("sft.learning_rate", s.learning_rate, 0.0, 1.0)?;
        range("sft.min_lr_ratio", s.min_lr_ratio, 0.0, 1.0)?;
        range("sft.max_grad_norm", s.max_grad_norm, 0.0, 1e6)?;
        range("sft.weight_decay", s.weight_decay, 0.0, 1.0)?;
        range("sft.adam_beta2", s.adam_beta2, 0.0, 0.999999)?;
        let r = &self.rl;
        at_least("rl.prompts_per_step", r.prompts_per_step, 1)?;
        let objective = self.entropy.objective.traits();
        at_least("rl.num_generations", r.num_generations, objective.min_group_size)?;
        at_least("rl.max_completion_length", r.max_completion_length, 1)?;
        at_least("rl.num_iterations", r.num_iterations, 1)?;
        range("rl.temperature", r.temperature, 0.0, 10.0)?;
        if r.temperature == 0.0 {
            return Err("key 'rl.temperature' must be > 0 for RL (greedy rollouts make identical groups)".into());
        }
        range("rl.top_p", r.top_p, 1e-9, 1.0)?;
        range("rl.learning_rate", r.learning_rate, 0.0, 1.0)?;
        range("rl.min_lr_ratio", r.min_lr_ratio, 0.0, 1.0)?;
        range("rl.epsilon", r.epsilon, 0.0, 0.999)?;
        range("rl.epsilon_high", r.epsilon_high(), 0.0, 10.0)?;
        range("rl.beta", r.beta, 0.0, 100.0)?;
        range("rl.advantage_eps", r.advantage_eps, 0.0, 1.0)?;
        range("rl.max_grad_norm", r.max_grad_norm, 0.0, 1e6)?;
        range("rl.weight_decay", r.weight_decay, 0.0, 1.0)?;
        range("rl.adam_beta2", r.adam_beta2, 0.0, 0.999999)?;
        at_least("max_consecutive_nonfinite", self.max_consecutive_nonfinite, 1)?;
        at_least("checkpoint.keep_last", self.checkpoint.keep_last, 1)?;
        at_least("eval.num_problems", self.eval.num_problems, 1)?;
        if let Some(s) = &self.sentinel {
            s.validate()?;
        }
        if let Some(m) = &self.monitor {
            m.validate()?;
        }
        if let Some(s) = &self.sia {
            s.validate()?;
        }
        if let Some(s) = &self.edis_sweep {
            s.validate()?;
        }
        at_least("eval.samples", self.eval.samples, 1)?;
        range("eval.temperature", self.eval.temperature, 0.0, 10.0)?;
        for (i, d) in self.eval.decoders.iter().enumerate() {
            d.validate().map_err(|e| format!("key 'eval.decoders[{i}]': {e}"))?;
        }
        range("eval.top_p", self.eval.top_p, 1e-9, 1.0)?;
        self.entropy.validate()?;
        self.decode.validate()?;
        self.alarms.validate()?;
        if r.dynamic_sampling && !objective.dynamic_sampling {
            return Err(
                "key 'rl.dynamic_sampling' judges verifier rewards: it needs 'entropy.objective' = \"reward\"".into(),
            );
        }
        Ok(())
    }
}

impl RunFile {
    /// The decode policy on this run's device.
    pub fn decode_policy(&self) -> crate::rollout::DecodePolicy {
        let device = self.device.primary().unwrap_or(crate::backend::DeviceSpec::Cpu);
        self.decode.resolve(device)
    }

    /// A device sampler needs a candidate set for a nucleus: every sampling temperature the run
    /// uses with top_p < 1 must come with top_k > 0.
    fn check_device_sampler(&self) -> Result<(), String> {
        if self.decode_policy().sampler != crate::rollout::SamplerPlace::Device {
            return Ok(());
        }
        let p = crate::rollout::SamplingParams {
            temperature: self.rl.temperature,
            top_k: self.rl.top_k,
            top_p: self.rl.top_p,
            ..Default::default()
        };
        crate::rollout::device_step::supports(&p).map_err(|m| format!("keys 'rl.top_p'/'rl.top_k': {m}"))
    }
}
