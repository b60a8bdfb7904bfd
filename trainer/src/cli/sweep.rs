//! `entrl sweep`: run (or continue) an ablation sweep and aggregate it (see `entrl::sweep`).

use std::path::PathBuf;

use clap::Args;
use entrl::backend::DeviceSpec;
use entrl::config::RunFile;
use entrl::eval::job::{eval_job, resolve_targets};
use entrl::sweep::{SweepFile, check_distinct, run_arms};

/// Arguments of `entrl sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// The sweep file (e.g. configs/sweeps/edis_ablation.toml).
    pub sweep: PathBuf,
    /// Only list the arms and their state.
    #[arg(long)]
    pub dry_run: bool,
    /// Only aggregate what has finished (no training).
    #[arg(long)]
    pub aggregate_only: bool,
}

fn train_arm(run: RunFile, resume: bool) -> anyhow::Result<()> {
    let spec: DeviceSpec = run.device.primary().map_err(anyhow::Error::msg)?;
    entrl::with_train_backend!(spec, |B, device| entrl::train::train::<B>(
        run.clone(),
        resume,
        false,
        &device
    ))?;
    Ok(())
}

/// Runs `entrl sweep`.
pub fn run(a: SweepArgs) -> anyhow::Result<()> {
    let sweep = SweepFile::load(&a.sweep)?;
    let arms = sweep.arms(&a.sweep)?;
    check_distinct(&arms)?;
    if a.dry_run {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for arm in &arms {
            let state = entrl::sweep::arm_state(&arm.dir);
            // a closed pipe (`| head`) ends the listing quietly
            if writeln!(
                out,
                "{state:?}\t{}\tseed {}\t{}",
                arm.label,
                arm.seed,
                arm.dir.display()
            )
            .is_err()
            {
                break;
            }
        }
        return Ok(());
    }
    if !a.aggregate_only {
        let outcomes = run_arms(&sweep, &arms, &train_arm)?;
        for o in &outcomes {
            match &o.error {
                Some(e) => eprintln!("{} seed {}: FAILED: {e}", o.label, o.seed),
                None => eprintln!("{} seed {}: {}", o.label, o.seed, o.status),
            }
        }
        // every finished arm without an evaluation gets one: the newly trained ones, and those a
        // kill interrupted between training and evaluation
        if sweep.eval_after {
            for arm in arms
                .iter()
                .filter(|a| entrl::sweep::arm_state(&a.dir) == entrl::sweep::ArmState::Done)
            {
                if !arm.dir.join("eval/report.json").exists() {
                    let spec: DeviceSpec = arm.run.device.primary().map_err(anyhow::Error::msg)?;
                    let targets = resolve_targets(&[arm.dir.join("final")])?;
                    let out = arm.dir.join("eval");
                    entrl::with_backend!(spec, |B, device| eval_job::<B>(&arm.run, &targets, &out, &device))?;
                }
            }
        }
    }
    let (md, _) = entrl::sweep::aggregate(&sweep, &arms)?;
    print!("{md}");
    println!(
        "\nwrote {0}/sweep.md, {0}/sweep.csv, {0}/plots/",
        sweep.output_dir.display()
    );
    Ok(())
}
