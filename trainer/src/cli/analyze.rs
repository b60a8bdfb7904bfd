//! `entrl analyze sia`: the Stepwise Informativeness analysis over a run file's `[sia]` section
//! (see `entrl::sia`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use entrl::backend::DeviceSpec;
use entrl::config::{RunFile, SiaSection};
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
}

/// Runs `entrl analyze`.
pub fn run(a: AnalyzeArgs) -> anyhow::Result<()> {
    let AnalyzeCmd::Sia {
        config,
        checkpoint,
        out,
        set,
    } = a.cmd;
    let run = RunFile::load(&config, &set)?;
    let section = run
        .sia
        .clone()
        .with_context(|| format!("{}: no [sia] section", config.display()))?;
    let dir = super::model_dir(&run, checkpoint.as_deref())?;
    let out = out.unwrap_or_else(|| run.output_dir.join("sia"));
    let spec: DeviceSpec = run.device.primary().map_err(anyhow::Error::msg)?;
    let traces = entrl::with_backend!(spec, |B, device| traces::<B>(&run, &section, &dir, &device))?;
    let rep = report::build(
        traces,
        &dir.display().to_string(),
        section.violation_tol,
        section.fano_alphabet,
    );
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
