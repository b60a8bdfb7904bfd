//! Named f32 weights in Hugging Face layout, and the two ways between them and a [`Transformer`].
//!
//! A [`Weights`] map (`"model.layers.0.self_attn.q_proj.weight"` → shape + values) is the one format
//! every source converts to: `model.safetensors` (f32/f16/bf16), a GGUF import, or a seeded
//! from-scratch init. Building the model from it is a single code path, and saving walks the model
//! back to the same names.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::config::ModelConfig;
use super::transformer::{Block, Transformer};

/// Errors reading or writing weights; each names the file or tensor.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// File system failure.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: String,
        /// Cause (in the message, not a separate `source`, so error chains do not repeat it).
        err: std::io::Error,
    },
    /// Not a valid safetensors file.
    #[error("{path}: not a valid safetensors file: {msg}")]
    Format {
        /// The file.
        path: String,
        /// What was wrong.
        msg: String,
    },
    /// A tensor the config needs is absent.
    #[error("missing tensor '{0}'")]
    Missing(String),
    /// A tensor has the wrong shape for the config.
    #[error("tensor '{name}' has shape {got:?}, config expects {want:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Found.
        got: Vec<usize>,
        /// Expected.
        want: Vec<usize>,
    },
    /// A tensor contains NaN or infinity.
    #[error("tensor '{0}' contains NaN or infinite values (corrupt checkpoint?)")]
    NonFinite(String),
    /// A tensor the architecture does not use (another architecture's weights).
    #[error(
        "unexpected tensor '{0}': the Llama/Qwen2/Qwen3 layout has no such weight (an architecture entrl does not implement?)"
    )]
    Unexpected(String),
}

/// One tensor: row-major f32 values and their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Shape, outermost first (PyTorch order).
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Tensor name → tensor, sorted so files are written deterministically.
pub type Weights = BTreeMap<String, NamedTensor>;

/// The tensors a config needs, with their HF names and shapes.
pub fn expected_shapes(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let (q, kv) = (
        cfg.num_attention_heads * cfg.head_dim(),
        cfg.kv_heads() * cfg.head_dim(),
    );
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, d])];
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}.");
        out.push((format!("{p}input_layernorm.weight"), vec![d]));
        out.push((format!("{p}self_attn.q_proj.weight"), vec![q, d]));
        out.push((format!("{p}self_attn.k_proj.weight"), vec![kv, d]));
        out.push((format!("{p}self_attn.v_proj.weight"), vec![kv, d]));
        if cfg.qkv_bias() {
            out.push((format!("{p}self_attn.q_proj.bias"), vec![q]));
            out.push((format!("{p}self_attn.k_proj.bias"), vec![kv]));
            out.push((format!("{p}self_attn.v_proj.bias"), vec![kv]));
        }
        if cfg.qk_norm() {
            out.push((format!("{p}self_attn.q_norm.weight"), vec![cfg.head_dim()]));
            out.push((format!("{p}self_attn.k_norm.weight"), vec![cfg.head_dim()]));
        }
        out.push((format!("{p}self_attn.o_proj.weight"), vec![d, q]));
        out.push((format!("{p}post_attention_layernorm.weight"), vec![d]));
        out.push((format!("{p}mlp.gate_proj.weight"), vec![f, d]));
        out.push((format!("{p}mlp.up_proj.weight"), vec![f, d]));
        out.push((format!("{p}mlp.down_proj.weight"), vec![d, f]));
    }
    out.push(("model.norm.weight".to_string(), vec![d]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![v, d]));
    }
    out
}

/// Seeded from-scratch init: N(0, initializer_range) for matrices, zeros for biases, ones for norms.
/// Output projections (o_proj, down_proj) are scaled by 1/sqrt(2·layers), GPT-2 style, so the
/// residual stream does not grow with depth.
pub fn init_weights(cfg: &ModelConfig, seed: u64) -> Weights {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let std = cfg.initializer_range as f32;
    let resid = std / (2.0 * cfg.num_hidden_layers as f32).sqrt();
    expected_shapes(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                let s = if name.contains("o_proj") || name.contains("down_proj") {
                    resid
                } else {
                    std
                };
                let normal = Normal::new(0.0f32, s).expect("valid std");
                (0..n).map(|_| normal.sample(&mut rng)).collect()
            };
            (name, NamedTensor { shape, data })
        })
        .collect()
}

/// Stable parameter id from the HF name, so optimizer state maps to parameters across runs.
pub fn param_id(name: &str) -> ParamId {
    // FNV-1a: tiny, stable across platforms and Rust versions (unlike `DefaultHasher`).
    let h = name
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    ParamId::from(h)
}

fn take<B: Backend, const D: usize>(
    w: &mut Weights,
    name: &str,
    want: &[usize],
    device: &B::Device,
) -> Result<Param<Tensor<B, D>>, WeightsError> {
    let t = w.remove(name).ok_or_else(|| WeightsError::Missing(name.to_string()))?;
    if t.shape != want {
        return Err(WeightsError::Shape {
            name: name.into(),
            got: t.shape,
            want: want.to_vec(),
        });
    }
    if t.data.iter().any(|x| !x.is_finite()) {
        return Err(WeightsError::NonFinite(name.into()));
    }
    let tensor = Tensor::<B, D>::from_data(TensorData::new(t.data, t.shape), device);
    Ok(Param::initialized(param_id(name), tensor.require_grad()))
}

/// Builds a model from named weights (consumed). Leftover tensors are an error, except rotary
/// caches (`*.rotary_emb.inv_freq`) and an `lm_head.weight` that tied embeddings make redundant.
pub fn build_model<B: Backend>(
    cfg: &ModelConfig,
    mut w: Weights,
    device: &B::Device,
) -> Result<Transformer<B>, WeightsError> {
    let shapes: BTreeMap<String, Vec<usize>> = expected_shapes(cfg).into_iter().collect();
    let get1 = |w: &mut Weights, n: &str| take::<B, 1>(w, n, &shapes[n], device);
    let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}.");
        let n = |s: &str| format!("{p}{s}");
        let m2 = |w: &mut Weights, s: &str| take::<B, 2>(w, &n(s), &shapes[&n(s)], device);
        let bias = |w: &mut Weights, s: &str| -> Result<_, WeightsError> {
            if cfg.qkv_bias() {
                Ok(Some(take::<B, 1>(w, &n(s), &shapes[&n(s)], device)?))
            } else {
                Ok(None)
            }
        };
        let norm = |w: &mut Weights, s: &str| -> Result<_, WeightsError> {
            if cfg.qk_norm() {
                Ok(Some(take::<B, 1>(w, &n(s), &shapes[&n(s)], device)?))
            } else {
                Ok(None)
            }
        };
        layers.push(Block {
            input_layernorm: get1(&mut w, &n("input_layernorm.weight"))?,
            q_proj: m2(&mut w, "self_attn.q_proj.weight")?,
            k_proj: m2(&mut w, "self_attn.k_proj.weight")?,
            v_proj: m2(&mut w, "self_attn.v_proj.weight")?,
            q_bias: bias(&mut w, "self_attn.q_proj.bias")?,
            k_bias: bias(&mut w, "self_attn.k_proj.bias")?,
            v_bias: bias(&mut w, "self_attn.v_proj.bias")?,
            q_norm: norm(&mut w, "self_attn.q_norm.weight")?,
            k_norm: norm(&mut w, "self_attn.k_norm.weight")?,
            o_proj: m2(&mut w, "self_attn.o_proj.weight")?,
            post_attention_layernorm: get1(&mut w, &n("post_attention_layernorm.weight"))?,
            gate_proj: m2(&mut w, "mlp.gate_proj.weight")?,
            up_proj: m2(&mut w, "mlp.up_proj.weight")?,
            down_proj: m2(&mut w, "mlp.down_proj.weight")?,
        });
    }
    let lm_head = if cfg.tie_word_embeddings {
        None
    } else {
        Some(take::<B, 2>(
            &mut w,
            "lm_head.weight",
            &shapes["lm_head.weight"],
            device,
        )?)
    };
    let model = Transformer {
        embed_tokens: take::<B, 2>(
            &mut w,
            "model.embed_tokens.weight",
            &shapes["model.embed_tokens.weight"],
            device,
        )?,
        layers,
        norm: get1(&mut w, "model.norm.weight")?,
        lm_head,
        config: cfg.clone(),
        precision: super::transformer::Precision::F32,
    };
    let harmless = |n: &str| n.ends_with("rotary_emb.inv_freq") || (n == "lm_head.weight" && cfg.tie_word_embeddings);
    match w.keys().find(|n| !harmless(n)) {
        Some(n) => Err(WeightsError::Unexpected(n.clone())),
        None => Ok(model),
    }
}

fn host<B: Backend, const D: usize>(p: &Param<Tensor<B, D>>) -> NamedTensor {
    let t = p.val();
    let shape = t.dims().to_vec();
    let data = t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 tensor");
    NamedTensor { shape, data }
}

/// Walks the model back to HF names (inverse of [`build_model`]).
pub fn model_weights<B: Backend>(m: &Transformer<B>) -> Weights {
    let mut w = Weights::new();
    w.insert("model.embed_tokens.weight".into(), host(&m.embed_tokens));
    for (i, b) in m.layers.iter().enumerate() {
        let p = format!("model.layers.{i}.");
        w.insert(format!("{p}input_layernorm.weight"), host(&b.input_layernorm));
        w.insert(format!("{p}self_attn.q_proj.weight"), host(&b.q_proj));
        w.insert(format!("{p}self_attn.k_proj.weight"), host(&b.k_proj));
        w.insert(format!("{p}self_attn.v_proj.weight"), host(&b.v_proj));
        for (s, t) in [("q", &b.q_bias), ("k", &b.k_bias), ("v", &b.v_bias)] {
            if let Some(t) = t {
                w.insert(format!("{p}self_attn.{s}_proj.bias"), host(t));
            }
        }
        for (s, t) in [("q", &b.q_norm), ("k", &b.k_norm)] {
            if let Some(t) = t {
                w.insert(format!("{p}self_attn.{s}_norm.weight"), host(t));
            }
        }
        w.insert(format!("{p}self_attn.o_proj.weight"), host(&b.o_proj));
        w.insert(
            format!("{p}post_attention_layernorm.weight"),
            host(&b.post_attention_layernorm),
        );
        w.insert(format!("{p}mlp.gate_proj.weight"), host(&b.gate_proj));
        w.insert(format!("{p}mlp.up_proj.weight"), host(&b.up_proj));
        w.insert(format!("{p}mlp.down_proj.weight"), host(&b.down_proj));
    }
    w.insert("model.norm.weight".into(), host(&m.norm));
    if let Some(h) = &m.lm_head {
        w.insert("lm_head.weight".into(), host(h));
    }
    w
}

/// Reads one `.safetensors` file (f32, f16 or bf16 tensors) into f32 weights.
pub fn read_safetensors(path: &Path) -> Result<Weights, WeightsError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|err| WeightsError::Io { path: p.clone(), err })?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| WeightsError::Format {
        path: p.clone(),
        msg: e.to_string(),
    })?;
    let mut out = Weights::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            safetensors::Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            safetensors::Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(WeightsError::Format {
                    path: p,
                    msg: format!("tensor '{name}' has unsupported dtype {other:?}"),
                });
            }
        };
        out.insert(
            name,
            NamedTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Writes f32 weights as one `.safetensors` file with `{"format": "pt"}` metadata (what
/// `transformers` checks for), via a temporary file and a rename so a crash never leaves half a file.
pub fn write_safetensors(w: &Weights, path: &Path) -> Result<(), WeightsError> {
    write_safetensors_as(w, path, false)
}

/// [`write_safetensors`], in bfloat16 when `bf16` (rounded to nearest even, as torch's `.to(bfloat16)`).
pub fn write_safetensors_as(w: &Weights, path: &Path, bf16: bool) -> Result<(), WeightsError> {
    let p = path.display().to_string();
    let dtype = if bf16 {
        safetensors::Dtype::BF16
    } else {
        safetensors::Dtype::F32
    };
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = w
        .iter()
        .map(|(n, t)| {
            let b: Vec<u8> = if bf16 {
                t.data
                    .iter()
                    .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                    .collect()
            } else {
                t.data.iter().flat_map(|x| x.to_le_bytes()).collect()
            };
            (n.clone(), b, t.shape.clone())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, b, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(dtype, s.clone(), b).expect("consistent view"),
            )
        })
        .collect();
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::tensor::serialize_to_file(views, Some(meta), &tmp).map_err(|e| WeightsError::Format {
        path: p.clone(),
        msg: e.to_string(),
    })?;
    std::fs::rename(&tmp, path).map_err(|err| WeightsError::Io { path: p, err })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn build_then_walk_is_identity() {
        let cfg = ModelConfig {
            attention_bias: true,
            ..ModelConfig::tiny(11)
        };
        let w = init_weights(&cfg, 3);
        let m = build_model::<Flex>(&cfg, w.clone(), &Default::default()).unwrap();
        assert_eq!(model_weights(&m), w);
    }

    #[test]
    fn missing_and_misshapen_tensors_are_named() {
        let cfg = ModelConfig::tiny(11);
        let mut w = init_weights(&cfg, 3);
        w.remove("model.layers.1.mlp.up_proj.weight");
        let e = build_model::<Flex>(&cfg, w, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.layers.1.mlp.up_proj.weight"), "{e}");
        let mut w = init_weights(&cfg, 3);
        w.get_mut("model.norm.weight").unwrap().shape = vec![3];
        let e = build_model::<Flex>(&cfg, w, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.norm.weight") && e.contains("[3]"), "{e}");
    }

    #[test]
    fn init_is_seeded() {
        let cfg = ModelConfig::tiny(11);
        assert_eq!(init_weights(&cfg, 1), init_weights(&cfg, 1));
        assert_ne!(init_weights(&cfg, 1), init_weights(&cfg, 2));
    }
}
