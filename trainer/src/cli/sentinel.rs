//! `entrl sentinel fit|estimate`: Entropy Sentinel over a run file's `[sentinel]` domains (see
//! `entrl::sentinel`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use entrl::backend::DeviceSpec;
use entrl::config::{RunFile, SentinelSection};
use entrl::sentinel::{Answering, DomainAnswers, SentinelFile, collect, fit, report};

/// `entrl sentinel ...`
#[derive(Args)]
pub struct SentinelArgs {
    #[command(subcommand)]
    cmd: SentinelCmd,
}

#[derive(Subcommand)]
enum SentinelCmd {
    /// Answer every domain, fit a Sentinel on the training domains, write `sentinel.json` and the
    /// estimate report over all domains.
    Fit(Common),
    /// Answer every domain with a model and estimate its accuracy with a fitted Sentinel.
    Estimate {
        #[command(flatten)]
        common: Common,
        /// The fitted Sentinel (`sentinel.json` from `entrl sentinel fit`).
        #[arg(long)]
        sentinel: PathBuf,
    },
}

/// Arguments both subcommands take.
#[derive(Args)]
struct Common {
    /// The run file with a `[sentinel]` section (its template, verifier and `data.eval_seed` apply).
    config: PathBuf,
    /// The model: a model directory or a run directory (its last checkpoint). Default: the run
    /// file's `model.path`, else its `output_dir`.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Output directory (default `<output_dir>/sentinel`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override a key: `--set sentinel.features=\"d17\"` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Runs `entrl sentinel`.
pub fn run(a: SentinelArgs) -> anyhow::Result<()> {
    match a.cmd {
        SentinelCmd::Fit(c) => go(&c, None),
        SentinelCmd::Estimate { common, sentinel } => go(&common, Some(&sentinel)),
    }
}

fn go(c: &Common, sentinel_file: Option<&Path>) -> anyhow::Result<()> {
    let run = RunFile::load(&c.config, &c.set)?;
    let section = run
        .sentinel
        .clone()
        .with_context(|| format!("{}: no [sentinel] section", c.config.display()))?;
    // A bad Sentinel file fails before any answer is generated.
    let loaded = sentinel_file.map(SentinelFile::load).transpose()?;
    let dir = super::model_dir(&run, c.checkpoint.as_deref())?;
    let out = c.out.clone().unwrap_or_else(|| run.output_dir.join("sentinel"));
    let spec: DeviceSpec = run.device.primary().map_err(anyhow::Error::msg)?;
    let domains = entrl::with_backend!(spec, |B, device| answer::<B>(&run, &section, &dir, &device))?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("answers.json"), serde_json::to_string(&domains)?)?;
    let model_name = dir.display().to_string();
    let file = match loaded {
        Some(f) => f,
        None => {
            let f = fit(&domains, &section, Answering::of(&run, &section), &model_name)?;
            f.save(&out.join("sentinel.json"))?;
            f
        }
    };
    let mut rep = report::estimate(&file, &domains, &model_name)?;
    rep.intervals = entrl::sentinel::intervals::intervals(&rep.domains, run.eval.bootstrap, run.seed);
    report::write(&rep, &out)?;
    print!("{}", report::markdown(&rep));
    println!("\nreport: {}/report.md", out.display());
    Ok(())
}

fn answer<B: burn::tensor::backend::Backend>(
    run: &RunFile,
    section: &SentinelSection,
    dir: &Path,
    device: &B::Device,
) -> anyhow::Result<Vec<DomainAnswers>> {
    let (m, inputs) = super::load_model::<B>(run, dir, device)?;
    collect(&m, &inputs, run, section)
}
