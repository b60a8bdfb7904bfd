//! `entrl analyze sia`: the Stepwise Informativeness analysis over a run file's `[sia]` section
//! (see `entrl::sia`); `entrl analyze edis`: EDIS recalibrated on one model from an evaluation's
//! trajectory artifact (see `entrl::eval::edis_sweep`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use entrl::backend::DeviceSpec;
use entrl::config::{RunFile, SiaSection};
use entrl::eval::edis_sweep;
use entrl::sia::{Trace, analyze, report};

/// `entrl analyze ...`
#[derive(Args)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    cmd: AnalyzeCmd,
}

#[derive(Subcommand)]
enum AnalyzeCmd {
    /// Answer entropy after each reasoning step (teacher-forced gold answer and sampled answers),
    /// correct vs incorrect chains, monotonicity violations, Fano's bound; report and plots.
    Sia {
        /// The run file with a `[sia]` section (its template, verifier, `data.eval_seed` apply).
        config: PathBuf,
        /// A model directory or a run directory (its last checkpoint). Default: `model.path`,
        /// else `output_dir`.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Output directory (default `<output_dir>/sia`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a key: `--set sia.problems=20` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// EDIS's window and thresholds recalibrated on this model: reads an evaluation's samples
    /// artifact, calibrates on a share of its problems, reports AUROCs on the rest with intervals.
    Edis {
        /// The run file: `[entropy.edis]` (the paper's parameters), `[edis_sweep]` (defaults when
        /// absent) and `eval.bootstrap` apply.
        config: PathBuf,
        /// An evaluation's samples artifact (`<eval out>/<checkpoint>/trajectories/eval-step-*-samples.safetensors`).
        #[arg(long)]
        trajectories: PathBuf,
        /// Output directory (default `<output_dir>/edis_sweep`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a key: `--set edis_sweep.windows=[1,8]` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

/// Runs `entrl analyze`.
pub fn run(a: AnalyzeArgs) -> anyhow::Result<()> {
    match a.cmd {
        AnalyzeCmd::Sia {
            config,
            checkpoint,
            out,
            set,
        } => sia(&config, checkpoint.as_deref(), out, &set),
        AnalyzeCmd::Edis {
            config,
            trajectories,
            out,
            set,
        } => edis(&config, &trajectories, out, &set),
    }
}

fn edis(config: &Path, trajectories: &Path, out: Option<PathBuf>, set: &[String]) -> anyhow::Result<()> {
    let run = RunFile::load(config, set)?;
    let section = run.edis_sweep.clone().unwrap_or_default();
    let (_, records) = entrl::trajectories::read(trajectories)?;
    let out = out.unwrap_or_else(|| run.output_dir.join("edis_sweep"));
    let rep = edis_sweep::sweep(
        &records,
        &trajectories.display().to_string(),
        &run.entropy.edis,
        &section,
        run.eval.bootstrap,
    )?;
    edis_sweep::write(&rep, &out).with_context(|| out.display().to_string())?;
    print!("{}", edis_sweep::markdown(&rep));
    println!("\nreport: {}/report.md", out.display());
    Ok(())
}

fn sia(config: &Path, checkpoint: Option<&Path>, out: Option<PathBuf>, set: &[String]) -> anyhow::Result<()> {
    let run = RunFile::load(config, set)?;
    let section = run
        .sia
        .clone()
        .with_context(|| format!("{}: no [sia] section", config.display()))?;
    let dir = super::model_dir(&run, checkpoint)?;
    let out = out.unwrap_or_else(|| run.output_dir.join("sia"));
    let spec: DeviceSpec = run.device.primary().map_err(anyhow::Error::msg)?;
    let traces = entrl::with_backend!(spec, |B, device| traces::<B>(&run, &section, &dir, &device))?;
    let mut rep = report::build(
        traces,
        &dir.display().to_string(),
        section.violation_tol,
        section.fano_alphabet,
    );
    rep.intervals =
        entrl::sia::intervals::intervals(&rep.per_trace, section.violation_tol, run.eval.bootstrap, section.seed);
    report::write(&rep, &out)?;
    print!("{}", report::markdown(&rep));
    println!("\nreport: {}/report.md", out.display());
    Ok(())
}

fn traces<B: burn::tensor::backend::Backend>(
    run: &RunFile,
    s: &SiaSection,
    dir: &Path,
    device: &B::Device,
) -> anyhow::Result<Vec<Trace>> {
    let (m, inputs) = super::load_model::<B>(run, dir, device)?;
    analyze(&m, &inputs, run, s)
}
