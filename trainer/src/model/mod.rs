//! The policy model: config, transformer, KV cache, and Hugging Face / GGUF interop.

pub mod cache;
pub mod config;
pub mod gguf;
pub mod host_decode;
pub mod prefix;
pub mod rope;
pub mod skinny;
pub mod transformer;
pub mod weights;

use std::path::Path;

use burn::tensor::backend::Backend;

pub use cache::KvCache;
pub use config::ModelConfig;
pub use transformer::Transformer;
pub use weights::{Weights, WeightsError};

/// Errors loading or saving a Hugging Face model directory; every message names the path.
#[derive(Debug, thiserror::Error)]
pub enum HfDirError {
    /// A file could not be read or written.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: String,
        /// Cause (in the message, not a separate `source`, so error chains do not repeat it).
        err: std::io::Error,
    },
    /// `config.json` is not valid JSON for a Llama-family config.
    #[error("{path}: {msg}")]
    Config {
        /// The file.
        path: String,
        /// Parser or validation message.
        msg: String,
    },
    /// Weights problem (missing tensor, wrong shape, corrupt file).
    #[error("{dir}: {err}")]
    Weights {
        /// The directory.
        dir: String,
        /// Cause.
        err: WeightsError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HfDirError + '_ {
    move |err| HfDirError::Io {
        path: path.display().to_string(),
        err,
    }
}

/// Reads `config.json` from a model directory.
pub fn read_config(dir: &Path) -> Result<ModelConfig, HfDirError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let mut cfg: ModelConfig = serde_json::from_str(&text).map_err(|e| HfDirError::Config {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    cfg.resolve_rope_parameters();
    cfg.validate().map_err(|e| HfDirError::Config {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    Ok(cfg)
}

/// Reads all weights of a directory: `model.safetensors`, or the shards listed in
/// `model.safetensors.index.json`.
pub fn read_dir_weights(dir: &Path) -> Result<Weights, HfDirError> {
    let wrap = |err| HfDirError::Weights {
        dir: dir.display().to_string(),
        err,
    };
    let single = dir.join("model.safetensors");
    if single.exists() {
        return weights::read_safetensors(&single).map_err(wrap);
    }
    let index = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).map_err(io(&index))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| HfDirError::Config {
        path: index.display().to_string(),
        msg: e.to_string(),
    })?;
    let mut shards: Vec<String> = v["weight_map"]
        .as_object()
        .map(|m| m.values().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default();
    shards.sort();
    shards.dedup();
    let mut all = Weights::new();
    for s in shards {
        all.extend(weights::read_safetensors(&dir.join(s)).map_err(wrap)?);
    }
    Ok(all)
}

/// Loads a Hugging Face Llama/Qwen2/Qwen3 directory.
pub fn load_hf_dir<B: Backend>(dir: &Path, device: &B::Device) -> Result<Transformer<B>, HfDirError> {
    let cfg = read_config(dir)?;
    let w = read_dir_weights(dir)?;
    weights::build_model(&cfg, w, device).map_err(|err| HfDirError::Weights {
        dir: dir.display().to_string(),
        err,
    })
}

/// Writes `config.json` and `model.safetensors` (f32) so `transformers` loads the directory as is.
pub fn save_hf_dir<B: Backend>(model: &Transformer<B>, dir: &Path) -> Result<(), HfDirError> {
    save_hf_dir_as(model, dir, false)
}

/// [`save_hf_dir`] with bfloat16 weights when `bf16` (`config.json` then says `torch_dtype`
/// bfloat16, as transformers writes it).
pub fn save_hf_dir_as<B: Backend>(model: &Transformer<B>, dir: &Path, bf16: bool) -> Result<(), HfDirError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut cfg = model.config().clone();
    cfg.torch_dtype = if bf16 { "bfloat16" } else { "float32" }.into();
    write_config(&cfg, dir)?;
    let path = dir.join("model.safetensors");
    weights::write_safetensors_as(&weights::model_weights(model), &path, bf16).map_err(|err| HfDirError::Weights {
        dir: dir.display().to_string(),
        err,
    })
}

/// Writes `config.json` (with HF's `architectures` filled in when empty).
pub fn write_config(cfg: &ModelConfig, dir: &Path) -> Result<(), HfDirError> {
    let mut cfg = cfg.clone();
    if cfg.architectures.is_empty() {
        cfg.architectures = vec![
            match cfg.model_type.as_str() {
                "qwen2" => "Qwen2ForCausalLM",
                "qwen3" => "Qwen3ForCausalLM",
                _ => "LlamaForCausalLM",
            }
            .into(),
        ];
    }
    let path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&cfg).expect("config serialises");
    std::fs::write(&path, text + "\n").map_err(io(&path))
}

/// Reads a from-scratch model config from `.json` or `.toml` (config.json vocabulary), validated;
/// errors name the file.
pub fn read_model_config_file(path: &Path) -> anyhow::Result<ModelConfig> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut cfg: ModelConfig = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).with_context(|| format!("{}: invalid model config", path.display()))?
    } else {
        serde_json::from_str(&text).with_context(|| format!("{}: invalid model config", path.display()))?
    };
    cfg.resolve_rope_parameters();
    cfg.validate().with_context(|| path.display().to_string())?;
    Ok(cfg)
}
