//! The training loop and what it needs: batches, optimizer, checkpoints, metrics, the two phases.

pub mod batch;
pub mod checkpoint;
pub mod metrics;
pub mod optim;
pub mod progress;
pub mod rl;
pub mod rollouts;
pub mod run;
pub mod samples;
pub mod sft;
pub mod update;

pub use run::{RunSummary, train};
