//! `entrl eval`: sampled evaluation of checkpoints (see `entrl::eval::job`).

use std::path::PathBuf;

use clap::Args;
use entrl::backend::DeviceSpec;
use entrl::config::RunFile;
use entrl::eval::job::{eval_job, resolve_targets};

/// Arguments of `entrl eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The run file whose data, template, rewards, `[eval]` and `[entropy.edis]` settings apply.
    pub config: PathBuf,
    /// Checkpoints: model directories and/or run directories (every checkpoint, in step order).
    /// Default: the config's `model.path`, else its `output_dir`.
    #[arg(long = "checkpoint", value_name = "DIR")]
    pub checkpoints: Vec<PathBuf>,
    /// Output directory (default: `<output_dir>/eval`). Re-running skips finished checkpoints.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a key: `--set eval.samples=32` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Runs `entrl eval`.
pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let run = RunFile::load(&a.config, &a.set)?;
    let paths = if a.checkpoints.is_empty() {
        vec![run.model.path.clone().unwrap_or_else(|| run.output_dir.clone())]
    } else {
        a.checkpoints.clone()
    };
    let targets = resolve_targets(&paths)?;
    let out = a.out.clone().unwrap_or_else(|| run.output_dir.join("eval"));
    let spec: DeviceSpec = run.device.primary().map_err(anyhow::Error::msg)?;
    let reports = entrl::with_backend!(spec, |B, device| eval_job::<B>(&run, &targets, &out, &device))?;
    // training curves of every run directory given
    for p in &paths {
        if p.join("metrics.jsonl").exists() {
            let name = p.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned());
            entrl::plots::run_curves(p, &out.join("plots").join(format!("training_curves-{name}")))?;
        }
    }
    print!("{}", entrl::eval::report::job_md(&reports));
    println!(
        "\nreports: {}/report.md, {}/<checkpoint>/report.md",
        out.display(),
        out.display()
    );
    Ok(())
}
