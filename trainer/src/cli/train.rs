//! `entrl train`: run a TOML config, or resume a run directory.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use entrl::backend::DeviceSpec;
use entrl::config::RunFile;

/// Arguments of `entrl train`.
#[derive(Args)]
pub struct TrainArgs {
    /// The run file (e.g. configs/quickstart.toml).
    #[arg(required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Override a key: `--set rl.beta=0.04` (repeatable; checked like the file).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue the run in this directory from its latest checkpoint (uses its saved config.toml).
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Delete an existing run in `output_dir` instead of refusing to start.
    #[arg(long)]
    pub overwrite: bool,
}

/// Runs `entrl train`.
pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let (run, resume) = match (&a.config, &a.resume) {
        (Some(c), None) => (RunFile::load(c, &a.set)?, false),
        (None, Some(dir)) => {
            let mut r = RunFile::load(&dir.join("config.toml"), &a.set)?;
            r.output_dir = dir.clone();
            (r, true)
        }
        _ => bail!("give a config file or --resume RUN_DIR"),
    };
    let specs: Vec<DeviceSpec> = run.device.specs().map_err(anyhow::Error::msg)?;
    let per = run.workers_per_device;
    let s = entrl::with_train_workers!(&specs, per, |B, workers| entrl::train::train_on::<B>(
        run,
        resume,
        a.overwrite,
        &workers
    ))?;
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
    println!(
        "held-out greedy accuracy on {} problems ({})",
        s.eval_problems,
        s.run_dir.display()
    );
    println!("  before training        {:>7}", pct(s.initial_accuracy));
    println!("  after warm-up (pre-RL) {:>7}", pct(s.pre_rl_accuracy));
    let delta = s.pre_rl_accuracy.map_or(String::new(), |p| {
        format!("  ({:+.1} points from RL)", 100.0 * (s.final_accuracy - p))
    });
    println!("  after RL               {:>7}{delta}", pct(Some(s.final_accuracy)));
    println!(
        "{} steps ({} skipped as non-finite) in {:.0} s",
        s.global_steps, s.skipped_steps, s.seconds
    );
    Ok(())
}
