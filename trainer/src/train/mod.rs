//! The training loop and what it needs: batches, optimizer, checkpoints, metrics, the two phases.

pub mod alarms;
pub mod batch;
pub mod groups;
pub mod metrics;
pub mod parallel;
pub mod progress;
pub mod rl;
pub mod run;
pub mod samples;
pub mod sft;
pub mod trainer;
pub mod update;

use burn::tensor::backend::AutodiffBackend;
use serde_json::{Map, Value};

use crate::config::RunFile;

pub use crate::{checkpoint, optim};
pub use run::RunSummary;
pub use trainer::Trainer;

/// Outcome of one optimizer step, SFT or RL.
pub struct StepOutcome<AB: AutodiffBackend> {
    /// The (possibly updated) policy.
    pub model: crate::model::Transformer<AB>,
    /// Training-data cursor after this step.
    pub cursor: u64,
    /// Metrics of the step.
    pub metrics: Map<String, Value>,
    /// False when the update was skipped (non-finite loss or gradient).
    pub finite: bool,
    /// Every completion the step sampled, kept or not, in sampling order (RL steps; the caller
    /// writes them as trajectory artifacts and decoded samples).
    pub records: Vec<crate::trajectories::Record>,
    /// The adaptive entropy coefficient after the step (`None`: not adaptive).
    pub entropy_coef: Option<f64>,
}

/// Trains according to `run` in `run.output_dir`; `resume` continues from its latest checkpoint,
/// `overwrite` replaces an existing run.
pub fn train<AB: AutodiffBackend>(
    run: RunFile,
    resume: bool,
    overwrite: bool,
    device: &AB::Device,
) -> anyhow::Result<RunSummary> {
    let workers = vec![device.clone(); run.workers_per_device];
    train_on::<AB>(run, resume, overwrite, &workers)
}

/// [`train`] with the RL updates data-parallel over `workers` (one device per worker; the model,
/// rollouts and SFT steps on the first).
pub fn train_on<AB: AutodiffBackend>(
    run: RunFile,
    resume: bool,
    overwrite: bool,
    workers: &[AB::Device],
) -> anyhow::Result<RunSummary> {
    let mut trainer = Trainer::<AB>::open(run, resume, overwrite, &workers[0])?.with_workers(workers.to_vec());
    while trainer.advance()? {}
    trainer.finish()
}
