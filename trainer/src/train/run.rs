//! A whole training run: setup or resume, supervised warm-up, RL, held-out evaluations,
//! checkpoints, metrics and the closing table.
//!
//! Ordering rule that makes resume exact: every metrics line carries the global step it belongs
//! to, and anything written at step s (training line, evaluation) is followed by a checkpoint
//! before anything at step s+1 is written; evaluations force a checkpoint. On resume from step k,
//! lines with step > k are dropped and regenerated identically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::{AutodiffModule, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use entrl_rewards::RewardSet;
use serde_json::{Map, Value, json};

use super::checkpoint::{self, Phase, TrainerState};
use super::metrics::MetricsLog;
use super::optim::{AdamW, AdamWConfig};
use super::progress::Progress;
use crate::config::{RunFile, SourceSpec, WeightsDtype};
use crate::data::jsonl::JsonlSource;
use crate::data::tasks::SyntheticSource;
use crate::data::{Problem, ProblemSource, PromptFormat};
use crate::eval::{EvalSpec, greedy_accuracy};
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
fn param_names(cfg: &model::ModelConfig) -> HashMap<ParamId, String> {
    weights::expected_shapes(cfg)
        .into_iter()
        .map(|(n, _)| (weights::param_id(&n), n))
        .collect()
}

fn new_optimizer<B: Backend>(run: &RunFile, phase: Phase) -> AdamW<B> {
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
fn save_checkpoint<AB: AutodiffBackend>(
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

/// Trains according to `run` in `run_dir`; `resume` continues from its latest checkpoint.
pub fn train<AB: AutodiffBackend>(
    run: RunFile,
    resume: bool,
    overwrite: bool,
    device: &AB::Device,
) -> anyhow::Result<RunSummary> {
    let t_start = Instant::now();
    if resume && !run.checkpoint.save_optimizer {
        bail!(
            "{}: cannot resume: the run saves no optimizer state (checkpoint.save_optimizer = false), so its checkpoints hold weights only and training could not continue exactly; start a new run from a checkpoint with `model.path = \"{}/checkpoints/step-N\"`",
            run.output_dir.display(),
            run.output_dir.display()
        );
    }
    // Inputs first: a bad tokenizer or dataset fails before anything is written.
    let tok_path = tokenizer_path(&run);
    let tok = Tokenizer::from_file(&tok_path)?;
    let prompts = run.data.prompt_format(tokenizer_dir(&tok_path))?;
    let train_src = source(&run.data.train, run.seed, true)?;
    let eval_spec = run.data.eval.clone().unwrap_or_else(|| run.data.train.clone());
    let eval_src = source(&eval_spec, run.data.eval_seed, false)?;
    let n_eval = eval_src
        .len()
        .map_or(run.eval.num_problems, |l| l.min(run.eval.num_problems));
    let eval: Vec<Problem> = (0..n_eval as u64).map(|i| eval_src.get(i)).collect();

    let run_dir = run.output_dir.clone();
    let replace_old_run = !resume && run_dir.join("metrics.jsonl").exists();
    if replace_old_run && !overwrite {
        bail!(
            "{} already holds a run: continue it with `entrl train --resume {}`, or start over with --overwrite",
            run_dir.display(),
            run_dir.display()
        );
    }

    // --- model and state: fresh or from the latest checkpoint (before the run directory is
    // touched, so a bad model config or weights file leaves nothing behind) ---
    let latest = if resume { checkpoint::latest(&run_dir) } else { None };
    if resume && latest.is_none() {
        tracing::warn!(
            "{}: no complete checkpoint yet, starting from the beginning",
            run_dir.display()
        );
    }
    let (mut model, mut state): (Transformer<AB>, TrainerState) = match &latest {
        Some((step, dir)) => {
            tracing::info!(step, "resuming from {}", dir.display());
            let st: TrainerState = serde_json::from_str(&std::fs::read_to_string(dir.join("trainer_state.json"))?)
                .with_context(|| format!("{}/trainer_state.json", dir.display()))?;
            (model::load_hf_dir(dir, device)?, st)
        }
        None => {
            let m = match (&run.model.path, &run.model.config) {
                (Some(p), _) => model::load_hf_dir(p, device)?,
                (None, Some(c)) => {
                    let cfg = crate::model::read_model_config_file(c)?;
                    weights::build_model(&cfg, weights::init_weights(&cfg, run.seed), device)?
                }
                (None, None) => unreachable!("validated"),
            };
            (m, TrainerState::new(run.sft.steps > 0))
        }
    };
    if tok.vocab_size > model.config().vocab_size {
        bail!(
            "{}: tokenizer has {} tokens, the model only {}",
            tok_path.display(),
            tok.vocab_size,
            model.config().vocab_size
        );
    }
    if replace_old_run {
        std::fs::remove_dir_all(&run_dir).with_context(|| format!("removing {}", run_dir.display()))?;
    }
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    std::fs::write(run_dir.join("config.toml"), run.to_toml())?;
    let mut opt = new_optimizer::<AB::InnerBackend>(&run, state.phase);
    if let Some((_, dir)) = &latest {
        let opt_file = dir.join("optimizer.safetensors");
        if !opt_file.exists() {
            bail!(
                "{}: cannot resume: this checkpoint holds weights only (saved with checkpoint.save_optimizer = false)",
                dir.display()
            );
        }
        let w = weights::read_safetensors(&opt_file)?;
        opt.load_state(&w, &param_names(model.config()), device)
            .map_err(anyhow::Error::msg)?;
        opt.step = state.optimizer_step;
    }
    let metrics = MetricsLog::open(&run_dir, latest.as_ref().map_or(0, |l| l.0))?;
    let samples_log = MetricsLog::open_file(&run_dir, "samples.jsonl", latest.as_ref().map_or(0, |l| l.0))?;
    if latest.is_none() {
        metrics.open_fresh()?;
        samples_log.open_fresh()?;
    }
    let eos = tok.end_ids(model.config().eos_ids());
    let reference_dir = run_dir.join("reference");
    let reference = if run.rl.beta > 0.0 && reference_dir.join("model.safetensors").exists() {
        Some(model::load_hf_dir(&reference_dir, device)?)
    } else {
        None
    };
    let rewards = RewardSet {
        fns: run.rewards.iter().map(|e| (e.function.clone(), e.weight)).collect(),
    };
    let mut ctx = Ctx {
        run,
        tok,
        prompts,
        train: train_src,
        eval,
        rewards,
        eos,
        reference,
    };

    let total = ctx.run.sft.steps + ctx.run.rl.steps;
    let log = &ctx.run.logging;
    let progress = Progress::new(total, state.global_step, log.logging_steps, log.show_completion);
    let mut skipped = 0u64;
    let eval_len = ctx
        .run
        .eval
        .max_completion_length
        .unwrap_or(ctx.run.rl.max_completion_length);
    let evaluate = |ctx: &Ctx<AB::InnerBackend>,
                    model: &Transformer<AB>,
                    label: &str,
                    state: &TrainerState|
     -> anyhow::Result<f64> {
        let spec = EvalSpec {
            tok: &ctx.tok,
            prompts: &ctx.prompts,
            rewards: &ctx.rewards,
            eos: &ctx.eos,
            max_new_tokens: eval_len,
            batch: 256,
            edis: ctx.run.entropy.edis,
        };
        let r = greedy_accuracy(&model.valid(), &ctx.eval, &spec);
        let mut m = Map::new();
        m.insert("step".into(), json!(state.global_step));
        m.insert("eval/label".into(), json!(label));
        m.insert("eval/greedy_accuracy".into(), json!(r.accuracy));
        m.insert("eval/mean_length".into(), json!(r.mean_length));
        for (src, (c, n)) in &r.per_source {
            m.insert(format!("eval/{src}/greedy_accuracy"), json!(*c as f64 / *n as f64));
        }
        let h: Vec<f64> = r
            .records
            .iter()
            .flat_map(|x| x.entropies.iter().map(|&v| v as f64))
            .collect();
        m.insert("eval/entropy_raw".into(), json!(super::metrics::summary(&h).0));
        m.append(&mut crate::trajectories::signal_metrics(&r.records, "eval/"));
        if ctx.run.entropy.trajectories {
            let header = crate::trajectories::Header {
                kind: "eval".into(),
                step: state.global_step,
                label: label.into(),
                edis: ctx.run.entropy.edis,
            };
            crate::trajectories::write(&ctx.run.output_dir.join("trajectories"), &header, &r.records)?;
        }
        metrics.write(&m)?;
        tracing::info!(
            step = state.global_step,
            accuracy = r.accuracy,
            "held-out greedy accuracy ({label}, {} problems)",
            ctx.eval.len()
        );
        Ok(r.accuracy)
    };

    loop {
        match state.phase {
            Phase::Sft if state.initial_accuracy.is_none() => {
                state.initial_accuracy = Some(evaluate(&ctx, &model, "initial", &state)?);
                save_checkpoint(&run_dir, &ctx, &model, &opt, &state)?;
            }
            Phase::Sft if state.phase_step >= ctx.run.sft.steps => {
                state.phase = Phase::Rl;
                state.phase_step = 0;
                state.optimizer_step = 0;
                opt = new_optimizer(&ctx.run, Phase::Rl);
            }
            Phase::Rl if state.pre_rl_accuracy.is_none() => {
                let acc = evaluate(&ctx, &model, "before_rl", &state)?;
                state.pre_rl_accuracy = Some(acc);
                state.initial_accuracy.get_or_insert(acc);
                if ctx.run.rl.beta > 0.0 && ctx.reference.is_none() {
                    model::save_hf_dir(&model, &reference_dir)?;
                    ctx.reference = Some(model.valid());
                }
                save_checkpoint(&run_dir, &ctx, &model, &opt, &state)?;
            }
            Phase::Rl if state.phase_step >= ctx.run.rl.steps => state.phase = Phase::Done,
            Phase::Done => break,
            phase => {
                let t0 = Instant::now();
                let (new_model, cursor, mut m, finite, samples) = match phase {
                    Phase::Sft => {
                        let (m, c, line, ok) =
                            super::sft::sft_step(&ctx, model, &mut opt, state.phase_step, state.data_cursor, device);
                        (m, c, line, ok, vec![])
                    }
                    _ => {
                        let o = super::rl::rl_step(
                            &ctx,
                            model,
                            &mut opt,
                            state.phase_step,
                            state.global_step,
                            state.data_cursor,
                            device,
                        );
                        (o.model, o.cursor, o.metrics, o.finite, o.samples)
                    }
                };
                model = new_model;
                state.data_cursor = cursor;
                state.phase_step += 1;
                state.global_step += 1;
                state.optimizer_step = opt.step;
                if finite {
                    state.nonfinite_in_row = 0;
                } else {
                    state.nonfinite_in_row += 1;
                    skipped += 1;
                    tracing::warn!(
                        step = state.global_step,
                        in_a_row = state.nonfinite_in_row,
                        "non-finite loss or gradient: update skipped"
                    );
                    if state.nonfinite_in_row >= ctx.run.rl.max_consecutive_nonfinite {
                        bail!(
                            "aborting: {} consecutive steps with a non-finite loss or gradient (rl.max_consecutive_nonfinite)",
                            state.nonfinite_in_row
                        );
                    }
                }
                let secs = t0.elapsed().as_secs_f64();
                let mut line = Map::new();
                line.insert("step".into(), json!(state.global_step));
                line.insert("phase".into(), json!(phase));
                line.insert("phase_step".into(), json!(state.phase_step));
                line.insert("skipped_nonfinite".into(), json!(!finite));
                line.append(&mut m);
                let toks = line
                    .get("perf/tokens")
                    .and_then(Value::as_f64)
                    .or_else(|| line.get("sft/tokens").and_then(Value::as_f64))
                    .unwrap_or(0.0);
                line.insert("time/step_s".into(), json!(secs));
                line.insert("perf/tokens_per_s".into(), json!(toks / secs.max(1e-9)));
                metrics.write(&line)?;
                for s in &samples {
                    samples_log.write(s)?;
                }
                let shown = samples.first().and_then(|s| s["completion"].as_str());
                progress.step(state.global_step, phase, &line, shown);
                let every = ctx.run.checkpoint.save_every;
                let eval_due = phase == Phase::Rl
                    && ctx.run.eval.every > 0
                    && state.phase_step % ctx.run.eval.every == 0
                    && state.phase_step < ctx.run.rl.steps;
                if eval_due {
                    evaluate(&ctx, &model, "during_rl", &state)?;
                }
                if eval_due || (every > 0 && state.global_step % every == 0) {
                    save_checkpoint(&run_dir, &ctx, &model, &opt, &state)?;
                }
            }
        }
    }
    progress.finish();
    let final_acc = evaluate(&ctx, &model, "final", &state)?;
    save_checkpoint(&run_dir, &ctx, &model, &opt, &state)?;
    let final_dir = run_dir.join("final");
    model::save_hf_dir_as(&model, &final_dir, ctx.run.checkpoint.final_dtype == WeightsDtype::Bf16)?;
    copy_tokenizer_files(&tok_path, &final_dir)?;
    let summary = RunSummary {
        run_dir: run_dir.clone(),
        initial_accuracy: state.initial_accuracy,
        pre_rl_accuracy: state.pre_rl_accuracy,
        final_accuracy: final_acc,
        eval_problems: ctx.eval.len(),
        global_steps: state.global_step,
        skipped_steps: skipped,
        seconds: t_start.elapsed().as_secs_f64(),
    };
    std::fs::write(run_dir.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}
