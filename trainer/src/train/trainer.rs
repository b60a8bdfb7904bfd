//! The trainer of one run: [`Trainer::open`] (inputs, resume or overwrite, model, optimizer,
//! logs), [`Trainer::evaluate`], [`Trainer::step`] (one optimizer step of the current phase),
//! [`Trainer::advance`] (the resumable phase state machine) and [`Trainer::finish`].
//!
//! Ordering rule that makes resume exact: every metrics line carries the global step it belongs
//! to, and anything written at step s (training line, evaluation) is followed by a checkpoint
//! before anything at step s+1 is written; evaluations force a checkpoint. On resume from step k,
//! lines with step > k are dropped and regenerated identically.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde_json::{Map, json};

use super::alarms::{Alarms, Firing};
use super::metrics::{self, MetricsLog};
use super::progress::Progress;
use super::run::{RunSummary, param_names, save_checkpoint};
use super::{StepOutcome, rl, sft};
use crate::checkpoint::{self, Phase, TrainerState};
use crate::config::{RunFile, WeightsDtype};
use crate::eval::{EvalSpec, greedy_accuracy};
use crate::model::{self, Transformer, weights};
use crate::optim::AdamW;
use crate::plan::RunPlan;
use crate::sentinel::monitor::Monitor;
use crate::tokenizer::copy_tokenizer_files;
use crate::trajectories::{Header, Record};

/// A run being trained.
pub struct Trainer<AB: AutodiffBackend> {
    plan: RunPlan,
    /// `[monitor]`: a Sentinel's label-free accuracy estimate at each evaluation.
    monitor: Option<Monitor>,
    /// `[alarms]`: collapse checks after every RL step.
    alarms: Alarms,
    /// The frozen reference policy (`rl.beta > 0`, from the start of RL).
    reference: Option<Transformer<AB::InnerBackend>>,
    /// The policy; taken out only while a step consumes it.
    model: Option<Transformer<AB>>,
    opt: AdamW<AB::InnerBackend>,
    state: TrainerState,
    metrics: MetricsLog,
    samples: MetricsLog,
    progress: Progress,
    device: AB::Device,
    /// One device per data-parallel worker of the RL update (the first is `device`).
    workers: Vec<AB::Device>,
    skipped: u64,
    started: Instant,
}

/// The model and state a run starts from, and the checkpoint they came from.
type Start<AB> = (Transformer<AB>, TrainerState, Option<(u64, PathBuf)>);

impl<AB: AutodiffBackend> Trainer<AB> {
    /// Runs the RL updates data-parallel over `workers` (one device per worker; the model stays
    /// on the first).
    pub fn with_workers(mut self, workers: Vec<AB::Device>) -> Self {
        assert!(!workers.is_empty(), "at least one worker");
        self.workers = workers;
        self
    }

    /// Sets up the run in `run.output_dir`: a fresh start (refusing an existing run unless
    /// `overwrite`), or the latest checkpoint when `resume`. Every input is read and checked before
    /// the run directory is touched.
    pub fn open(run: RunFile, resume: bool, overwrite: bool, device: &AB::Device) -> anyhow::Result<Self> {
        let started = Instant::now();
        if resume && !run.checkpoint.save_optimizer {
            bail!(
                "{}: cannot resume: the run saves no optimizer state (checkpoint.save_optimizer = false), so its checkpoints hold weights only and training could not continue exactly; start a new run from a checkpoint with `model.path = \"{}/checkpoints/step-N\"`",
                run.output_dir.display(),
                run.output_dir.display()
            );
        }
        let plan = RunPlan::resolve(run)?;
        let monitor = Monitor::resolve(&plan.file)?;
        let run = &plan.file;
        let run_dir = run.output_dir.clone();
        let replace_old_run = !resume && run_dir.join("metrics.jsonl").exists();
        if replace_old_run && !overwrite {
            bail!(
                "{} already holds a run: continue it with `entrl train --resume {}`, or start over with --overwrite",
                run_dir.display(),
                run_dir.display()
            );
        }
        let (model, state, latest) = start::<AB>(&plan, resume, device)?;
        if replace_old_run {
            std::fs::remove_dir_all(&run_dir).with_context(|| format!("removing {}", run_dir.display()))?;
        }
        std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
        std::fs::write(run_dir.join("config.toml"), run.to_toml())?;
        let opt = restore_optimizer(&plan, &state, latest.as_ref(), &model, device)?;
        let kept = latest.as_ref().map_or(0, |l| l.0);
        let metrics = MetricsLog::open(&run_dir, kept)?;
        let samples = MetricsLog::open_file(&run_dir, "samples.jsonl", kept)?;
        let mut alarms = Alarms::new(run.alarms.clone());
        if latest.is_none() {
            metrics.open_fresh()?;
            samples.open_fresh()?;
        } else {
            metrics::read_lines(&run_dir)?.iter().for_each(|l| alarms.replay(l));
        }
        let reference = reference::<AB>(&plan, device)?;
        let workers = run.workers_per_device;
        let log = &run.logging;
        let total = plan.sft.steps + plan.rl.steps;
        let progress = Progress::new(total, state.global_step, log.logging_steps, log.show_completion);
        Ok(Self {
            plan,
            monitor,
            alarms,
            reference,
            model: Some(model),
            opt,
            state,
            metrics,
            samples,
            progress,
            device: device.clone(),
            workers: vec![device.clone(); workers],
            skipped: 0,
            started,
        })
    }

    fn model(&self) -> &Transformer<AB> {
        self.model.as_ref().expect("the model is back after every step")
    }

    /// Held-out greedy accuracy, logged as an `eval/*` metrics line (and a trajectory artifact).
    pub fn evaluate(&self, label: &str) -> anyhow::Result<f64> {
        let (plan, step) = (&self.plan, self.state.global_step);
        let problems = &plan.eval.problems;
        let r = greedy_accuracy(&self.model().valid(), problems, &EvalSpec::new(&plan.eval, &plan.model))?;
        let mut m = Map::new();
        m.insert("step".into(), json!(step));
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
        m.insert("eval/entropy_raw".into(), json!(metrics::summary(&h).0));
        m.append(&mut crate::trajectories::signal_metrics(&r.records, "eval/"));
        if let Some(monitor) = &self.monitor {
            m.append(&mut monitor.metrics(&self.model().valid(), &plan.model)?);
        }
        if plan.file.entropy.trajectories {
            let header = crate::trajectories::Header {
                kind: "eval".into(),
                step,
                label: label.into(),
                signals: plan.eval.signals,
            };
            crate::trajectories::write(&plan.run_dir().join("trajectories"), &header, &r.records)?;
        }
        self.metrics.write(&m)?;
        tracing::info!(
            step,
            accuracy = r.accuracy,
            "held-out greedy accuracy ({label}, {} problems)",
            problems.len()
        );
        Ok(r.accuracy)
    }

    fn checkpoint(&self) -> anyhow::Result<()> {
        save_checkpoint(&self.plan, self.model(), &self.opt, &self.state)
    }

    /// One step of the state machine: an evaluation or phase change at a phase boundary, else one
    /// optimizer step. False once the run is done.
    pub fn advance(&mut self) -> anyhow::Result<bool> {
        let s = &mut self.state;
        match s.phase {
            Phase::Sft if s.initial_accuracy.is_none() => {
                self.state.initial_accuracy = Some(self.evaluate("initial")?);
                self.checkpoint()?;
            }
            Phase::Sft if s.phase_step >= self.plan.sft.steps => {
                s.phase = Phase::Rl;
                s.phase_step = 0;
                s.optimizer_step = 0;
                self.opt = self.plan.rl.optimizer();
            }
            Phase::Rl if s.pre_rl_accuracy.is_none() => {
                let acc = self.evaluate("before_rl")?;
                self.state.pre_rl_accuracy = Some(acc);
                self.state.initial_accuracy.get_or_insert(acc);
                if self.plan.loss.beta > 0.0 && self.reference.is_none() {
                    model::save_hf_dir(self.model(), &self.plan.run_dir().join("reference"))?;
                    self.reference = Some(self.model().valid());
                }
                self.checkpoint()?;
            }
            Phase::Rl if s.phase_step >= self.plan.rl.steps => s.phase = Phase::Done,
            Phase::Done => return Ok(false),
            Phase::Sft | Phase::Rl => self.step()?,
        }
        Ok(true)
    }

    /// One optimizer step of the current phase, its metrics line and samples, the step line, and
    /// the evaluation and checkpoint that fall due.
    pub fn step(&mut self) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let phase = self.state.phase;
        let outcome = match self.run_step(phase) {
            Ok(outcome) => outcome,
            Err(failure) => return self.stop_resumably(*failure),
        };
        self.model = Some(outcome.model);
        let s = &mut self.state;
        s.data_cursor = outcome.cursor;
        s.entropy_coef = outcome.entropy_coef.or(s.entropy_coef);
        s.phase_step += 1;
        s.global_step += 1;
        s.optimizer_step = self.opt.step;
        let mut line = metrics::step_line(&self.state, phase, outcome.finite, outcome.metrics, t0.elapsed());
        let fired = self.watch_alarms(phase, &mut line);
        self.write_trajectories(&outcome.records);
        self.metrics.write(&line)?;
        let samples = self.sample_lines(&outcome.records);
        for sample in &samples {
            self.samples.write(sample)?;
        }
        let shown = samples.first().and_then(|s| s["completion"].as_str());
        self.progress.step(self.state.global_step, phase, &line, shown);
        // after the step's line is written: the line of the step that aborts the run is kept
        self.count_nonfinite(outcome.finite)?;
        let (run, s) = (&self.plan.file, &self.state);
        let eval_due = phase == Phase::Rl
            && run.eval.every > 0
            && s.phase_step % run.eval.every == 0
            && s.phase_step < self.plan.rl.steps;
        let every = run.checkpoint.save_every;
        let save_due = eval_due || (every > 0 && s.global_step % every == 0);
        if eval_due {
            self.evaluate("during_rl")?;
        }
        if save_due {
            self.checkpoint()?;
        }
        match self.alarms.stops(&fired) {
            Some(firing) => self.stop_on_alarm(firing, save_due),
            None => Ok(()),
        }
    }

    /// The `[alarms]` checks after an RL step: each firing alarm goes into the step line as
    /// `alarm/<name>` (its statistic), with a warning when it starts firing.
    fn watch_alarms(&mut self, phase: Phase, line: &mut Map<String, serde_json::Value>) -> Vec<Firing> {
        if phase != Phase::Rl {
            return vec![];
        }
        let before = self.alarms.firing().clone();
        let fired = self.alarms.observe(line);
        for f in &fired {
            line.insert(format!("alarm/{}", f.kind.name()), json!(f.value));
            if !before.contains(&f.kind) {
                tracing::warn!(step = self.state.global_step, "alarm {}: {}", f.kind.name(), f.message);
            }
        }
        fired
    }

    /// An alarm in `alarms.stop_on` fired: the step is checkpointed and the run stops.
    fn stop_on_alarm(&self, firing: &Firing, saved: bool) -> anyhow::Result<()> {
        if !saved {
            self.checkpoint()?;
        }
        bail!(
            "alarm '{}' stopped the run after step {} (alarms.stop_on): {}\ncheckpoint saved in {}; to go on, take it out of alarms.stop_on (or change the run) and resume with `entrl train <config> --resume`",
            firing.kind.name(),
            self.state.global_step,
            firing.message,
            self.plan.run_dir().join("checkpoints").display()
        )
    }

    /// The step's completions as `trajectories/train-step-N.safetensors` (a failure only warns:
    /// artifacts are diagnostics, not state).
    fn write_trajectories(&self, records: &[Record]) {
        if records.is_empty() || !self.plan.file.entropy.trajectories {
            return;
        }
        let h = Header {
            kind: "train".into(),
            step: self.state.global_step,
            label: String::new(),
            signals: self.plan.eval.signals,
        };
        let dir = self.plan.run_dir().join("trajectories");
        if let Err(err) = crate::trajectories::write(&dir, &h, records) {
            tracing::warn!("trajectory artifact of step {} not written: {err:#}", h.step);
        }
    }

    /// `logging.log_completions` of the step's completions, decoded, for `samples.jsonl`.
    fn sample_lines(&self, records: &[Record]) -> Vec<Map<String, serde_json::Value>> {
        let plan = &self.plan;
        super::samples::sample_lines(
            self.state.global_step,
            records,
            plan.file.logging.log_completions,
            |i| plan.model.prompts.problem_prompt(&plan.train.get(i)),
            |t| plan.model.tok.decode(t, false),
        )
    }

    /// A reward program failed before the step changed anything: the model goes back, a
    /// checkpoint of the last finished step is written, and the run stops with the program's error.
    fn stop_resumably(&mut self, failure: rl::StepFailure<AB>) -> anyhow::Result<()> {
        self.model = Some(failure.model);
        self.checkpoint()?;
        bail!(
            "{}\nstopped before step {}; checkpoint saved in {} (fix the program, then resume with `entrl train <config> --resume`)",
            failure.error,
            self.state.global_step + 1,
            self.plan.run_dir().join("checkpoints").display()
        )
    }

    fn run_step(&mut self, phase: Phase) -> Result<StepOutcome<AB>, Box<rl::StepFailure<AB>>> {
        let model = self.model.take().expect("the model is back after every step");
        let s = &self.state;
        match phase {
            Phase::Sft => Ok(sft::sft_step(
                &self.plan,
                model,
                &mut self.opt,
                s.phase_step,
                s.data_cursor,
                &self.device,
            )),
            Phase::Rl | Phase::Done => rl::rl_step(
                &self.plan,
                self.reference.as_ref(),
                model,
                &mut self.opt,
                s,
                &self.workers,
            ),
        }
    }

    /// Counts a skipped (non-finite) step; too many in a row abort the run.
    fn count_nonfinite(&mut self, finite: bool) -> anyhow::Result<()> {
        let s = &mut self.state;
        if finite {
            s.nonfinite_in_row = 0;
            return Ok(());
        }
        s.nonfinite_in_row += 1;
        self.skipped += 1;
        tracing::warn!(
            step = s.global_step,
            in_a_row = s.nonfinite_in_row,
            "non-finite loss or gradient: update skipped"
        );
        if s.nonfinite_in_row >= self.plan.max_consecutive_nonfinite {
            bail!(
                "aborting: {} consecutive steps with a non-finite loss or gradient (max_consecutive_nonfinite)",
                s.nonfinite_in_row
            );
        }
        Ok(())
    }

    /// The final evaluation and checkpoint, `final/` and `summary.json`.
    pub fn finish(self) -> anyhow::Result<RunSummary> {
        self.progress.finish();
        let final_accuracy = self.evaluate("final")?;
        self.checkpoint()?;
        let run = &self.plan.file;
        let final_dir = run.output_dir.join("final");
        model::save_hf_dir_as(
            self.model(),
            &final_dir,
            run.checkpoint.final_dtype == WeightsDtype::Bf16,
        )?;
        copy_tokenizer_files(&self.plan.model.tokenizer_json, &final_dir)?;
        let summary = RunSummary {
            run_dir: run.output_dir.clone(),
            initial_accuracy: self.state.initial_accuracy,
            pre_rl_accuracy: self.state.pre_rl_accuracy,
            final_accuracy,
            eval_problems: self.plan.eval.problems.len(),
            global_steps: self.state.global_step,
            skipped_steps: self.skipped,
            seconds: self.started.elapsed().as_secs_f64(),
        };
        std::fs::write(
            run.output_dir.join("summary.json"),
            serde_json::to_string_pretty(&summary)?,
        )?;
        crate::plots::run_curves(&run.output_dir, &run.output_dir.join("plots/training_curves"))?;
        Ok(summary)
    }
}

/// The model and state to start from: the latest checkpoint when resuming, else the configured
/// model (pretrained or seeded from scratch) and a first state.
fn start<AB: AutodiffBackend>(plan: &RunPlan, resume: bool, device: &AB::Device) -> anyhow::Result<Start<AB>> {
    let run = &plan.file;
    let latest = if resume {
        checkpoint::latest(&run.output_dir)
    } else {
        None
    };
    if let Some((step, dir)) = &latest {
        tracing::info!(step, "resuming from {}", dir.display());
        let st: TrainerState = serde_json::from_str(&std::fs::read_to_string(dir.join("trainer_state.json"))?)
            .with_context(|| format!("{}/trainer_state.json", dir.display()))?;
        return Ok((model::load_hf_dir(dir, device)?, st, latest));
    }
    if resume {
        tracing::warn!(
            "{}: no complete checkpoint yet, starting from the beginning",
            run.output_dir.display()
        );
    }
    let m = match &run.model.path {
        Some(p) => model::load_hf_dir(p, device)?,
        None => {
            let cfg = &plan.model_config;
            weights::build_model(cfg, weights::init_weights(cfg, run.seed), device)?
        }
    };
    Ok((m, TrainerState::new(plan.sft.steps > 0), None))
}

/// The phase's optimizer, with its moments restored from `latest` when resuming.
fn restore_optimizer<AB: AutodiffBackend>(
    plan: &RunPlan,
    state: &TrainerState,
    latest: Option<&(u64, PathBuf)>,
    model: &Transformer<AB>,
    device: &AB::Device,
) -> anyhow::Result<AdamW<AB::InnerBackend>> {
    let mut opt = match state.phase {
        Phase::Sft => plan.sft.optimizer::<AB::InnerBackend>(),
        Phase::Rl | Phase::Done => plan.rl.optimizer(),
    };
    if let Some((_, dir)) = latest {
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
    Ok(opt)
}

/// The frozen reference policy of a resumed run that got past the start of RL with `rl.beta > 0`
/// (a fresh run writes it then).
fn reference<AB: AutodiffBackend>(
    plan: &RunPlan,
    device: &AB::Device,
) -> anyhow::Result<Option<Transformer<AB::InnerBackend>>> {
    let dir = plan.run_dir().join("reference");
    if plan.loss.beta > 0.0 && dir.join("model.safetensors").exists() {
        return Ok(Some(model::load_hf_dir(&dir, device)?));
    }
    Ok(None)
}
