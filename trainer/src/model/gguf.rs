//! GGUF (llama.cpp) import: read the container, dequantise, convert to Hugging Face layout.
//!
//! The format is small (a header, typed key/values, tensor descriptors, aligned data), so we read
//! it directly rather than depend on a young crate. Supported tensor types: F32, F16, BF16, Q8_0,
//! Q4_0, Q4_1 — what SmolLM2-135M-Instruct's Q4_1 file uses, plus the common neighbours.
//!
//! Two conversions matter for correctness:
//! * llama.cpp stores `attn_q`/`attn_k` rows permuted for its interleaved RoPE; HF uses
//!   rotate-half. Row `h·E + s·E/2 + j` of HF is row `h·E + 2j + s` of GGUF ([`unpermute_rows`]).
//!   Skipping this still gives fluent text but a much worse perplexity.
//! * GGUF lists dims fastest-first (`ne[0]` = in-features); HF shapes are outermost-first.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::config::{EosIds, ModelConfig};
use super::weights::{NamedTensor, Weights};

/// Errors while reading a GGUF file; each names the file and what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct GgufError {
    /// The file.
    pub path: String,
    /// What was wrong.
    pub msg: String,
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    /// Any integer type.
    Int(i64),
    /// f32/f64.
    Float(f64),
    /// bool.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Array of values.
    Array(Vec<Meta>),
}

/// One tensor descriptor.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// GGUF dims, fastest-varying first.
    pub dims: Vec<usize>,
    /// ggml type id.
    pub ggml_type: u32,
    /// Offset from the start of the data section.
    pub offset: usize,
}

/// A parsed GGUF file held in memory.
pub struct Gguf {
    /// Key/value metadata.
    pub meta: BTreeMap<String, Meta>,
    /// Tensor descriptors by name.
    pub tensors: BTreeMap<String, TensorInfo>,
    bytes: Vec<u8>,
    data_start: usize,
    path: String,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn len(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.b.len())
            .ok_or_else(|| format!("implausible length {n} at byte {}", self.pos))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| e.to_string())
    }
    fn value(&mut self, ty: u32) -> Result<Meta, String> {
        let mut n = |k: usize| -> Result<[u8; 8], String> {
            let mut a = [0u8; 8];
            a[..k].copy_from_slice(self.take(k)?);
            Ok(a)
        };
        Ok(match ty {
            0 => Meta::Int(n(1)?[0] as i64),
            1 => Meta::Int(n(1)?[0] as i8 as i64),
            2 => Meta::Int(u16::from_le_bytes(n(2)?[..2].try_into().expect("2")) as i64),
            3 => Meta::Int(i16::from_le_bytes(n(2)?[..2].try_into().expect("2")) as i64),
            4 => Meta::Int(u32::from_le_bytes(n(4)?[..4].try_into().expect("4")) as i64),
            5 => Meta::Int(i32::from_le_bytes(n(4)?[..4].try_into().expect("4")) as i64),
            // f32 metadata: keep its shortest decimal form (1e-5, not 9.99999974e-6)
            6 => Meta::Float(
                f32::from_le_bytes(n(4)?[..4].try_into().expect("4"))
                    .to_string()
                    .parse()
                    .expect("float"),
            ),
            7 => Meta::Bool(n(1)?[0] != 0),
            8 => Meta::Str(self.string()?),
            9 => {
                let ity = self.u32()?;
                let count = self.len()?;
                let mut items = Vec::with_capacity(count.min(1 << 20));
                for _ in 0..count {
                    items.push(self.value(ity)?);
                }
                Meta::Array(items)
            }
            10 => Meta::Int(u64::from_le_bytes(n(8)?) as i64),
            11 => Meta::Int(i64::from_le_bytes(n(8)?)),
            12 => Meta::Float(f64::from_le_bytes(n(8)?)),
            t => return Err(format!("unknown metadata type {t}")),
        })
    }
}

/// Bytes per block and weights per block of a ggml type.
fn block_layout(ty: u32) -> Option<(usize, usize)> {
    match ty {
        0 => Some((4, 1)),   // F32
        1 => Some((2, 1)),   // F16
        30 => Some((2, 1)),  // BF16
        2 => Some((18, 32)), // Q4_0: f16 d, 16 bytes of nibbles
        3 => Some((20, 32)), // Q4_1: f16 d, f16 m, 16 bytes of nibbles
        8 => Some((34, 32)), // Q8_0: f16 d, 32 int8
        _ => None,
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantises `n` weights of ggml type `ty` from `raw`.
pub fn dequantize(ty: u32, raw: &[u8], n: usize) -> Result<Vec<f32>, String> {
    let mut out = Vec::with_capacity(n);
    match ty {
        0 => out.extend(
            raw.chunks_exact(4)
                .take(n)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        1 => out.extend(
            raw.chunks_exact(2)
                .take(n)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        30 => out.extend(
            raw.chunks_exact(2)
                .take(n)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        2 | 3 => {
            let bs = if ty == 2 { 18 } else { 20 };
            for blk in raw.chunks_exact(bs).take(n / 32) {
                let d = f16_at(blk, 0);
                let (m, qs) = if ty == 2 {
                    (-8.0 * d, &blk[2..18])
                } else {
                    (f16_at(blk, 2), &blk[4..20])
                };
                // Low nibbles are weights 0..16, high nibbles weights 16..32.
                out.extend(qs.iter().map(|&q| d * (q & 0x0f) as f32 + m));
                out.extend(qs.iter().map(|&q| d * (q >> 4) as f32 + m));
            }
        }
        8 => {
            for blk in raw.chunks_exact(34).take(n / 32) {
                let d = f16_at(blk, 0);
                out.extend(blk[2..34].iter().map(|&q| d * (q as i8) as f32));
            }
        }
        t => return Err(format!("unsupported ggml tensor type {t}")),
    }
    if out.len() != n {
        return Err(format!("expected {n} weights, decoded {}", out.len()));
    }
    Ok(out)
}

/// Undoes llama.cpp's q/k row permutation for `heads` heads of `rows/heads` rows each.
pub fn unpermute_rows(data: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let hd = rows / heads;
    let half = hd / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..heads {
        for s in 0..2 {
            for j in 0..half {
                let dst = h * hd + s * half + j;
                let src = h * hd + 2 * j + s;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

impl Gguf {
    /// Reads and parses a whole file.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let p = path.display().to_string();
        let err = |msg: String| GgufError { path: p.clone(), msg };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let mut c = Cursor { b: &bytes, pos: 0 };
        if c.take(4).map_err(&err)? != b"GGUF" {
            return Err(err("not a GGUF file (bad magic)".into()));
        }
        let version = c.u32().map_err(&err)?;
        if !(2..=3).contains(&version) {
            return Err(err(format!("unsupported GGUF version {version}")));
        }
        let n_tensors = c.len().map_err(&err)?;
        let n_kv = c.len().map_err(&err)?;
        let mut meta = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string().map_err(&err)?;
            let ty = c.u32().map_err(&err)?;
            let v = c.value(ty).map_err(|m| err(format!("metadata '{key}': {m}")))?;
            meta.insert(key, v);
        }
        let mut tensors = BTreeMap::new();
        for _ in 0..n_tensors {
            let name = c.string().map_err(&err)?;
            let nd = c.u32().map_err(&err)? as usize;
            let dims = (0..nd).map(|_| c.len()).collect::<Result<Vec<_>, _>>().map_err(&err)?;
            let ggml_type = c.u32().map_err(&err)?;
            let offset = c.len().map_err(&err)?;
            tensors.insert(
                name,
                TensorInfo {
                    dims,
                    ggml_type,
                    offset,
                },
            );
        }
        let align = match meta.get("general.alignment") {
            Some(Meta::Int(a)) if *a > 0 => *a as usize,
            _ => 32,
        };
        let data_start = c.pos.div_ceil(align) * align;
        Ok(Self {
            meta,
            tensors,
            bytes,
            data_start,
            path: p,
        })
    }

    fn err(&self, msg: String) -> GgufError {
        GgufError {
            path: self.path.clone(),
            msg,
        }
    }

    /// Integer metadata.
    pub fn int(&self, key: &str) -> Result<i64, GgufError> {
        match self.meta.get(key) {
            Some(Meta::Int(v)) => Ok(*v),
            _ => Err(self.err(format!("missing integer metadata '{key}'"))),
        }
    }

    /// Float metadata.
    pub fn float(&self, key: &str) -> Result<f64, GgufError> {
        match self.meta.get(key) {
            Some(Meta::Float(v)) => Ok(*v),
            Some(Meta::Int(v)) => Ok(*v as f64),
            _ => Err(self.err(format!("missing float metadata '{key}'"))),
        }
    }

    /// String-array metadata.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, GgufError> {
        match self.meta.get(key) {
            Some(Meta::Array(a)) => a
                .iter()
                .map(|m| match m {
                    Meta::Str(s) => Ok(s.clone()),
                    _ => Err(self.err(format!("'{key}' holds a non-string"))),
                })
                .collect(),
            _ => Err(self.err(format!("missing string-array metadata '{key}'"))),
        }
    }

    /// Dequantised tensor in HF shape order (outermost first).
    pub fn tensor(&self, name: &str) -> Result<NamedTensor, GgufError> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| self.err(format!("missing tensor '{name}'")))?;
        let n: usize = info.dims.iter().product();
        let (bytes_per, per_block) = block_layout(info.ggml_type)
            .ok_or_else(|| self.err(format!("tensor '{name}': unsupported ggml type {}", info.ggml_type)))?;
        let size = n / per_block * bytes_per;
        let start = self.data_start + info.offset;
        let raw = self
            .bytes
            .get(start..start + size)
            .ok_or_else(|| self.err(format!("tensor '{name}' runs past the end of the file")))?;
        let data = dequantize(info.ggml_type, raw, n).map_err(|m| self.err(format!("tensor '{name}': {m}")))?;
        Ok(NamedTensor {
            shape: info.dims.iter().rev().copied().collect(),
            data,
        })
    }

    /// Model config from `llama.*` metadata.
    pub fn model_config(&self) -> Result<ModelConfig, GgufError> {
        let arch = match self.meta.get("general.architecture") {
            Some(Meta::Str(s)) => s.clone(),
            _ => return Err(self.err("missing 'general.architecture'".into())),
        };
        if arch != "llama" && arch != "qwen2" {
            return Err(self.err(format!("architecture '{arch}' is not supported (llama, qwen2)")));
        }
        let k = |s: &str| format!("{arch}.{s}");
        let vocab = self.strings("tokenizer.ggml.tokens")?.len();
        let heads = self.int(&k("attention.head_count"))? as usize;
        let mut cfg = ModelConfig::tiny(vocab);
        cfg.hidden_size = self.int(&k("embedding_length"))? as usize;
        cfg.intermediate_size = self.int(&k("feed_forward_length"))? as usize;
        cfg.num_hidden_layers = self.int(&k("block_count"))? as usize;
        cfg.num_attention_heads = heads;
        cfg.num_key_value_heads = Some(
            self.int(&k("attention.head_count_kv"))
                .map(|v| v as usize)
                .unwrap_or(heads),
        );
        cfg.rope_theta = self.float(&k("rope.freq_base")).unwrap_or(10_000.0);
        cfg.rms_norm_eps = self.float(&k("attention.layer_norm_rms_epsilon"))?;
        cfg.max_position_embeddings = self.int(&k("context_length"))? as usize;
        cfg.tie_word_embeddings = !self.tensors.contains_key("output.weight");
        cfg.model_type = arch.clone();
        cfg.attention_bias = self.tensors.contains_key("blk.0.attn_q.bias");
        cfg.architectures = vec![
            if arch == "qwen2" {
                "Qwen2ForCausalLM"
            } else {
                "LlamaForCausalLM"
            }
            .into(),
        ];
        cfg.bos_token_id = self.int("tokenizer.ggml.bos_token_id").ok().map(|v| v as u32);
        cfg.eos_token_id = self
            .int("tokenizer.ggml.eos_token_id")
            .ok()
            .map(|v| EosIds::One(v as u32));
        cfg.validate().map_err(|e| self.err(e.to_string()))?;
        Ok(cfg)
    }

    /// All weights under HF names, dequantised, with q/k un-permuted (llama only: qwen2 GGUFs are
    /// written without the permutation).
    pub fn hf_weights(&self, cfg: &ModelConfig) -> Result<Weights, GgufError> {
        let mut w = Weights::new();
        let mut put = |hf: String, t: NamedTensor| {
            w.insert(hf, t);
        };
        put("model.embed_tokens.weight".into(), self.tensor("token_embd.weight")?);
        put("model.norm.weight".into(), self.tensor("output_norm.weight")?);
        if !cfg.tie_word_embeddings {
            put("lm_head.weight".into(), self.tensor("output.weight")?);
        }
        let permuted = cfg.model_type == "llama";
        for i in 0..cfg.num_hidden_layers {
            let g = |s: &str| format!("blk.{i}.{s}");
            let h = |s: &str| format!("model.layers.{i}.{s}");
            for (gn, hn, heads) in [
                ("attn_q", "self_attn.q_proj", cfg.num_attention_heads),
                ("attn_k", "self_attn.k_proj", cfg.kv_heads()),
            ] {
                let mut t = self.tensor(&g(&format!("{gn}.weight")))?;
                if permuted {
                    t.data = unpermute_rows(&t.data, t.shape[0], t.shape[1], heads);
                }
                put(h(&format!("{hn}.weight")), t);
                if cfg.qkv_bias() {
                    let mut b = self.tensor(&g(&format!("{gn}.bias")))?;
                    if permuted {
                        b.data = unpermute_rows(&b.data, b.shape[0], 1, heads);
                    }
                    put(h(&format!("{hn}.bias")), b);
                }
            }
            if cfg.qkv_bias() {
                put(h("self_attn.v_proj.bias"), self.tensor(&g("attn_v.bias"))?);
            }
            for (gn, hn) in [
                ("attn_norm.weight", "input_layernorm.weight"),
                ("attn_v.weight", "self_attn.v_proj.weight"),
                ("attn_output.weight", "self_attn.o_proj.weight"),
                ("ffn_norm.weight", "post_attention_layernorm.weight"),
                ("ffn_gate.weight", "mlp.gate_proj.weight"),
                ("ffn_up.weight", "mlp.up_proj.weight"),
                ("ffn_down.weight", "mlp.down_proj.weight"),
            ] {
                put(h(hn), self.tensor(&g(gn))?);
            }
        }
        Ok(w)
    }

    /// A Hugging Face `tokenizer.json` rebuilt from `tokenizer.ggml.*` (byte-level BPE).
    ///
    /// The pre-tokenizer follows the GGUF `tokenizer.ggml.pre` name: `smollm` splits every digit
    /// on its own, then applies GPT-2 byte-level splitting without a prefix space.
    pub fn tokenizer_json(&self) -> Result<Value, GgufError> {
        match self.meta.get("tokenizer.ggml.model") {
            Some(Meta::Str(m)) if m == "gpt2" => {}
            other => {
                return Err(self.err(format!(
                    "tokenizer model {other:?} is not supported (only gpt2 byte-level BPE)"
                )));
            }
        }
        let tokens = self.strings("tokenizer.ggml.tokens")?;
        let merges = self.strings("tokenizer.ggml.merges")?;
        let types: Vec<i64> = match self.meta.get("tokenizer.ggml.token_type") {
            Some(Meta::Array(a)) => a.iter().map(|m| if let Meta::Int(v) = m { *v } else { 1 }).collect(),
            _ => vec![1; tokens.len()],
        };
        let vocab: serde_json::Map<String, Value> =
            tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
        // Token types 3 (control) and 4 (user-defined) are special tokens matched before BPE.
        let added: Vec<Value> = tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| matches!(types.get(*i), Some(3) | Some(4)))
            .map(|(i, t)| json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
            .collect();
        let pre = match self.meta.get("tokenizer.ggml.pre") {
            Some(Meta::Str(p)) => p.clone(),
            _ => "default".into(),
        };
        let byte_level =
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        let pre_tokenizer = match pre.as_str() {
            "smollm" => {
                json!({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level]})
            }
            "default" | "gpt2" => byte_level,
            other => return Err(self.err(format!("pre-tokenizer '{other}' is not supported (smollm, gpt2)"))),
        };
        Ok(json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": merges
            }
        }))
    }

    /// `tokenizer_config.json` with the special tokens and chat template, for `AutoTokenizer`.
    pub fn tokenizer_config_json(&self) -> Result<Value, GgufError> {
        let tokens = self.strings("tokenizer.ggml.tokens")?;
        let tok = |key: &str| self.int(key).ok().and_then(|i| tokens.get(i as usize).cloned());
        let template = match self.meta.get("tokenizer.chat_template") {
            Some(Meta::Str(s)) => Some(s.clone()),
            _ => None,
        };
        Ok(json!({
            "tokenizer_class": "GPT2Tokenizer",
            "bos_token": tok("tokenizer.ggml.bos_token_id"),
            "eos_token": tok("tokenizer.ggml.eos_token_id"),
            "pad_token": tok("tokenizer.ggml.padding_token_id"),
            "unk_token": tok("tokenizer.ggml.unknown_token_id"),
            "add_bos_token": false,
            "clean_up_tokenization_spaces": false,
            "model_max_length": self.int("llama.context_length").unwrap_or(2048),
            "chat_template": template,
        }))
    }
}

/// Converts a GGUF file into a Hugging Face directory: `config.json`, `model.safetensors` (f32),
/// `tokenizer.json`, `tokenizer_config.json`.
pub fn import_to_hf_dir(gguf_path: &Path, out: &Path) -> anyhow::Result<ModelConfig> {
    use anyhow::Context;
    let g = Gguf::open(gguf_path)?;
    let cfg = g.model_config()?;
    let w = g.hf_weights(&cfg)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    super::write_config(&cfg, out)?;
    super::weights::write_safetensors(&w, &out.join("model.safetensors"))?;
    let tok = g.tokenizer_json()?;
    std::fs::write(out.join("tokenizer.json"), serde_json::to_string(&tok)?)
        .with_context(|| format!("writing {}/tokenizer.json", out.display()))?;
    let tc = g.tokenizer_config_json()?;
    std::fs::write(out.join("tokenizer_config.json"), serde_json::to_string_pretty(&tc)?)?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_1_block_dequantises_low_then_high_nibbles() {
        // d = 0.5, m = -1.0; byte j holds weight j (low nibble) and weight j+16 (high nibble).
        let mut blk = Vec::new();
        blk.extend(half::f16::from_f32(0.5).to_le_bytes());
        blk.extend(half::f16::from_f32(-1.0).to_le_bytes());
        blk.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let w = dequantize(3, &blk, 32).unwrap();
        assert_eq!(w[0], -1.0);
        assert_eq!(w[15], 0.5 * 15.0 - 1.0);
        assert_eq!(w[16], 0.5 * 15.0 - 1.0);
        assert_eq!(w[31], -1.0);
    }

    #[test]
    fn q8_0_is_signed() {
        let mut blk = half::f16::from_f32(0.25).to_le_bytes().to_vec();
        blk.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let w = dequantize(8, &blk, 32).unwrap();
        assert_eq!(w[0], -4.0);
        assert_eq!(w[31], 3.75);
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: w.reshape(heads, 2, E/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let (heads, hd, cols) = (2, 4, 3);
        let rows = heads * hd;
        let hf: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let mut permuted = vec![0.0; hf.len()];
        for h in 0..heads {
            for s in 0..2 {
                for j in 0..hd / 2 {
                    let src = h * hd + s * hd / 2 + j; // HF row
                    let dst = h * hd + j * 2 + s; // after swapaxes
                    permuted[dst * cols..(dst + 1) * cols].copy_from_slice(&hf[src * cols..(src + 1) * cols]);
                }
            }
        }
        assert_eq!(unpermute_rows(&permuted, rows, cols, heads), hf);
    }

    #[test]
    fn bad_magic_names_the_file() {
        let dir = std::env::temp_dir().join("entrl_gguf_bad_magic");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.gguf");
        std::fs::write(&p, b"NOPE0000").unwrap();
        let e = Gguf::open(&p).err().unwrap().to_string();
        assert!(e.contains("x.gguf") && e.contains("magic"), "{e}");
    }
}
