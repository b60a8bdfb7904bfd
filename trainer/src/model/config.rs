//! Model hyper-parameters in Hugging Face `config.json` vocabulary.
//!
//! One struct serves both ways: a from-scratch config in our TOML presets and the `config.json` of a
//! Hugging Face Llama/Qwen2/Qwen3 directory. Field names are HF's so that a checkpoint we write is read by
//! `transformers` with no conversion, and one of theirs is read by us.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Decoder-only transformer of the Llama family (Llama 2/3.x, SmolLM2, Qwen2 with q/k/v bias, Qwen3
/// with QK-norm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Vocabulary size V.
    pub vocab_size: usize,
    /// Residual width D.
    pub hidden_size: usize,
    /// SwiGLU inner width F.
    pub intermediate_size: usize,
    /// Number of decoder blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); equals `num_attention_heads` for plain MHA.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; HF derives it as D / heads when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Rotary base.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    /// Longest position the rotary tables cover.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Output projection shares the input embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v projections (Qwen2 sets this implicitly; Llama names it `attention_bias`).
    #[serde(default)]
    pub attention_bias: bool,
    /// Beginning-of-sequence token id, if the tokenizer has one.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id(s): generation stops on any of them.
    #[serde(default)]
    pub eos_token_id: Option<EosIds>,
    /// HF model type: "llama", "qwen2" or "qwen3" (others fail in [`ModelConfig::validate`]).
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// HF rotary scaling: absent/`null`, type `default` or type `llama3` (Llama 3.1/3.2); others
    /// fail in [`ModelConfig::validate`] instead of silently computing the wrong positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<serde_json::Value>,
    /// transformers 5's spelling of `rope_theta` + `rope_scaling` in one table; read, then moved
    /// to those two fields by [`ModelConfig::resolve_rope_parameters`] (we write the Hub's older
    /// spelling, which transformers 4 and 5 both read).
    #[serde(default, skip_serializing)]
    pub rope_parameters: Option<serde_json::Value>,
    /// Bias on the MLP projections (Llama's `mlp_bias`): not implemented, rejected when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_bias: Option<bool>,
    /// Sliding-window attention (Qwen2/Qwen3's `use_sliding_window`): not implemented, rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_sliding_window: Option<bool>,
    /// HF architecture names, written back so `AutoModelForCausalLM` picks the right class.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Activation; only SiLU (SwiGLU) is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Unused by the math but kept so a round trip preserves it.
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    /// Stored dtype name HF expects (we compute in f32; saved as the weights file's dtype).
    #[serde(default = "default_dtype")]
    pub torch_dtype: String,
}

/// `eos_token_id` is an int or a list of ints in HF configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EosIds {
    /// One id.
    One(u32),
    /// Several ids (any ends generation).
    Many(Vec<u32>),
}

fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_rms_eps() -> f64 {
    1e-5
}
fn default_max_pos() -> usize {
    2048
}
/// The `model_type`s whose math entrl implements.
pub const SUPPORTED_MODEL_TYPES: [&str; 3] = ["llama", "qwen2", "qwen3"];

fn default_model_type() -> String {
    "llama".into()
}
fn default_act() -> String {
    "silu".into()
}
fn default_init_range() -> f64 {
    0.02
}
fn default_dtype() -> String {
    "float32".into()
}

impl ModelConfig {
    /// A small Llama for from-scratch training on the synthetic tasks.
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            hidden_size: 128,
            intermediate_size: 384,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            num_key_value_heads: Some(2),
            head_dim: None,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 256,
            tie_word_embeddings: true,
            attention_bias: false,
            bos_token_id: None,
            eos_token_id: None,
            model_type: "llama".into(),
            rope_scaling: None,
            rope_parameters: None,
            mlp_bias: None,
            use_sliding_window: None,
            architectures: vec!["LlamaForCausalLM".into()],
            hidden_act: "silu".into(),
            initializer_range: 0.02,
            torch_dtype: "float32".into(),
        }
    }

    /// Key/value heads (defaults to query heads).
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Per-head width.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// True when q/k/v carry a bias (explicit flag, or Qwen2 which always has one).
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias || self.model_type == "qwen2"
    }

    /// True when each head's queries and keys pass an RMSNorm before the rotation (Qwen3).
    pub fn qk_norm(&self) -> bool {
        self.model_type == "qwen3"
    }

    /// Moves transformers 5's `rope_parameters` (`rope_theta` + scaling in one table) into
    /// `rope_theta` and `rope_scaling`; called right after a config is parsed.
    pub fn resolve_rope_parameters(&mut self) {
        let Some(mut params) = self.rope_parameters.take().filter(|v| v.is_object()) else {
            return;
        };
        let map = params.as_object_mut().expect("checked above");
        if let Some(theta) = map.remove("rope_theta").and_then(|t| t.as_f64()) {
            self.rope_theta = theta;
        }
        if self.rope_scaling.is_none() && super::rope::rope_type(&params) != "default" {
            self.rope_scaling = Some(params);
        }
    }

    /// Rotary inverse frequencies `[E/2]`, with the configured scaling applied.
    pub fn rope_inv_freq(&self) -> Vec<f64> {
        super::rope::inv_freq(self.head_dim(), self.rope_theta, self.rope_scaling.as_ref())
    }

    /// All end-of-sequence ids.
    pub fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            None => vec![],
            Some(EosIds::One(id)) => vec![*id],
            Some(EosIds::Many(ids)) => ids.clone(),
        }
    }

    /// Parameter count (tied embeddings counted once).
    pub fn num_params(&self) -> usize {
        let (d, f, v, hd) = (
            self.hidden_size,
            self.intermediate_size,
            self.vocab_size,
            self.head_dim(),
        );
        let (nh, nkv) = (self.num_attention_heads, self.kv_heads());
        let bias = if self.qkv_bias() { (nh + 2 * nkv) * hd } else { 0 };
        let qk_norm = if self.qk_norm() { 2 * hd } else { 0 };
        let attn = d * nh * hd + 2 * d * nkv * hd + nh * hd * d + bias + qk_norm;
        let block = attn + 3 * d * f + 2 * d;
        let head = if self.tie_word_embeddings { 0 } else { v * d };
        v * d + self.num_hidden_layers * block + d + head
    }

    /// Checks the shapes fit together; called before any tensor is allocated.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(format!("invalid model config: {m}")));
        if self.vocab_size == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return err("vocab_size, hidden_size and num_hidden_layers must be > 0".into());
        }
        if self.num_attention_heads == 0 || self.kv_heads() == 0 {
            return err("num_attention_heads and num_key_value_heads must be > 0".into());
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return err(format!(
                "num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return err(format!(
                "hidden_size ({}) must be divisible by num_attention_heads ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return err(format!(
                "head_dim ({}) must be even for rotary embeddings",
                self.head_dim()
            ));
        }
        if !SUPPORTED_MODEL_TYPES.contains(&self.model_type.as_str()) {
            return err(format!(
                "model_type '{}' is not supported (entrl implements {})",
                self.model_type,
                SUPPORTED_MODEL_TYPES.join(", ")
            ));
        }
        if let Some(scaling) = self.rope_scaling.as_ref().filter(|v| !v.is_null()) {
            super::rope::validate(scaling).map_err(|m| ConfigError(format!("invalid model config: {m}")))?;
        }
        if self.mlp_bias == Some(true) {
            return err("mlp_bias = true is not supported (no architecture entrl implements has MLP biases)".into());
        }
        if self.use_sliding_window == Some(true) {
            return err("use_sliding_window = true is not supported (entrl implements full attention only)".into());
        }
        if self.hidden_act != "silu" {
            return err(format!("hidden_act '{}' is not supported (only silu)", self.hidden_act));
        }
        if self.rope_theta.is_nan() || self.rope_theta <= 0.0 || self.rms_norm_eps.is_nan() || self.rms_norm_eps <= 0.0
        {
            return err("rope_theta and rms_norm_eps must be > 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smollm2_param_count_matches_gguf_metadata() {
        // Numbers from the GGUF metadata of SmolLM2-135M-Instruct (shared/ASSETS.md).
        let mut c = ModelConfig::tiny(49152);
        c.hidden_size = 576;
        c.intermediate_size = 1536;
        c.num_hidden_layers = 30;
        c.num_attention_heads = 9;
        c.num_key_value_heads = Some(3);
        assert_eq!(c.head_dim(), 64);
        assert_eq!(c.num_params(), 134_515_008);
    }

    #[test]
    fn rejects_bad_gqa() {
        let mut c = ModelConfig::tiny(10);
        c.num_key_value_heads = Some(3);
        assert!(c.validate().unwrap_err().to_string().contains("multiple"));
    }

    #[test]
    fn eos_accepts_int_or_list() {
        let one: EosIds = serde_json::from_str("2").unwrap();
        let many: EosIds = serde_json::from_str("[2, 0]").unwrap();
        assert_eq!(one, EosIds::One(2));
        assert_eq!(many, EosIds::Many(vec![2, 0]));
    }
}
