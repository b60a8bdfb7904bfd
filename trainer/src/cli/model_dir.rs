//! Subcommands on model directories and tokenizers: GGUF import, seeded init, resave through our
//! writer, logits of one sequence, the synthetic tasks' tokenizer.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// `entrl import-gguf`
#[derive(Args)]
pub struct ImportArgs {
    /// The .gguf file.
    pub gguf: PathBuf,
    /// Output Hugging Face directory.
    pub out: PathBuf,
}

/// Converts GGUF → HF directory.
pub fn import(a: ImportArgs) -> anyhow::Result<()> {
    let cfg = entrl::model::gguf::import_to_hf_dir(&a.gguf, &a.out)?;
    tracing::info!(
        params = cfg.num_params(),
        layers = cfg.num_hidden_layers,
        vocab = cfg.vocab_size,
        "imported {} -> {}",
        a.gguf.display(),
        a.out.display()
    );
    Ok(())
}

/// `entrl synthetic-tokenizer`
#[derive(Args)]
pub struct TokenizerArgs {
    /// Where to write tokenizer.json.
    #[arg(default_value = "data/tokenizer.json")]
    pub out: PathBuf,
}

/// Writes the synthetic tokenizer.
pub fn tokenizer(a: TokenizerArgs) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(&entrl::tokenizer::synthetic_tokenizer_json())?;
    std::fs::write(&a.out, json + "\n").with_context(|| format!("writing {}", a.out.display()))?;
    Ok(())
}

/// `entrl init`
#[derive(Args)]
pub struct InitArgs {
    /// Model config (config.json vocabulary), as .json or .toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Output Hugging Face directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Init seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// tokenizer.json copied into the directory.
    #[arg(long, default_value = "data/tokenizer.json")]
    pub tokenizer: PathBuf,
}

/// Writes a seeded from-scratch model as a Hugging Face directory.
pub fn init(a: InitArgs) -> anyhow::Result<()> {
    use entrl::model::weights;
    let cfg = entrl::model::read_model_config_file(&a.config)?;
    let m =
        weights::build_model::<entrl::backend::Cpu>(&cfg, weights::init_weights(&cfg, a.seed), &Default::default())?;
    entrl::model::save_hf_dir(&m, &a.out)?;
    std::fs::copy(&a.tokenizer, a.out.join("tokenizer.json"))
        .with_context(|| format!("copying {}", a.tokenizer.display()))?;
    tracing::info!(params = cfg.num_params(), "wrote {}", a.out.display());
    Ok(())
}

/// `entrl resave`
#[derive(Args)]
pub struct ResaveArgs {
    /// Hugging Face directory to load.
    #[arg(long)]
    pub model: PathBuf,
    /// Where to save it again through entrl's writer.
    #[arg(long)]
    pub out: PathBuf,
    /// Save bfloat16 weights (as `checkpoint.final_dtype = "bf16"` does for a run's final/).
    #[arg(long)]
    pub bf16: bool,
}

/// Loads a model directory and saves it again (a round trip through entrl's own I/O).
pub fn resave(a: ResaveArgs) -> anyhow::Result<()> {
    let m = entrl::model::load_hf_dir::<entrl::backend::Cpu>(&a.model, &Default::default())?;
    entrl::model::save_hf_dir_as(&m, &a.out, a.bf16)?;
    let tok = a.model.join("tokenizer.json");
    if tok.exists() {
        entrl::tokenizer::copy_tokenizer_files(&tok, &a.out)?;
    }
    Ok(())
}

/// `entrl logits`
#[derive(Args)]
pub struct LogitsArgs {
    /// Hugging Face directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Comma-separated token ids.
    #[arg(long, value_delimiter = ',')]
    pub ids: Vec<u32>,
}

/// Prints the logits `[T, V]` of one sequence as JSON (for cross-checks with other tools).
pub fn logits(a: LogitsArgs) -> anyhow::Result<()> {
    use burn::tensor::{Int, Tensor, TensorData};
    type B = entrl::backend::Cpu;
    let m = entrl::model::load_hf_dir::<B>(&a.model, &Default::default())?;
    anyhow::ensure!(!a.ids.is_empty(), "--ids is empty");
    if let Some(bad) = a.ids.iter().find(|&&i| i as usize >= m.config().vocab_size) {
        anyhow::bail!(
            "--ids: token {bad} is outside the vocabulary ({})",
            m.config().vocab_size
        );
    }
    let t = a.ids.len();
    let x = Tensor::<B, 2, Int>::from_data(
        TensorData::new(a.ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, t]),
        &Default::default(),
    );
    let flat = m
        .forward(x)
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let rows: Vec<&[f32]> = flat.chunks(flat.len() / t).collect();
    println!("{}", serde_json::to_string(&rows)?);
    Ok(())
}
