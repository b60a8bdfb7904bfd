//! Subcommand implementations (thin: argument handling and printing).

pub mod analyze;
pub mod bench;
pub mod decoder_args;
pub mod eval;
pub mod generate;
pub mod malloc;
pub mod model_dir;
pub mod sentinel;
pub mod sweep;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::Context;
use entrl::config::RunFile;
use entrl::model::Transformer;
use entrl::plan::ModelInputs;

/// The model a command reads: `checkpoint`, else the run file's `model.path`, else its
/// `output_dir`; a run directory means its last checkpoint.
pub fn model_dir(run: &RunFile, checkpoint: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = checkpoint
        .map(Path::to_path_buf)
        .or_else(|| run.model.path.clone())
        .unwrap_or_else(|| run.output_dir.clone());
    let target = entrl::eval::job::resolve_targets(std::slice::from_ref(&path))?
        .pop()
        .with_context(|| format!("{}: no model found", path.display()))?;
    Ok(target.dir)
}

/// A model directory loaded with the run file's tokenizer, prompt format and end ids.
pub fn load_model<B: burn::tensor::backend::Backend>(
    run: &RunFile,
    dir: &Path,
    device: &B::Device,
) -> anyhow::Result<(Transformer<B>, ModelInputs)> {
    let m = entrl::model::load_hf_dir::<B>(dir, device)?;
    let inputs = ModelInputs::resolve(run, Some(dir), m.config())?;
    Ok((m, inputs))
}
