//! Llama-family decoder (RMSNorm, rotary embeddings, SwiGLU, grouped-query attention).
//!
//! Weights are kept in Hugging Face layout (`[out, in]` for projections) so that loading and saving
//! `model.safetensors` is a name lookup with no transposes; burn-flex multiplies strided (transposed)
//! views without copying them. Shapes in comments: B batch, T new tokens, S cached+new keys,
//! D hidden, H query heads, K kv heads, R = H/K, E head dim, F MLP width, V vocab.

use burn::module::{Module, Param};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Int, Tensor, TensorData};

use super::cache::KvCache;
use super::config::ModelConfig;

/// The dtype the forward computes in: f32 (the reference), or bf16 with f32 master weights (burn
/// 0.21 has no autocast: the weights are cast where they are used, a differentiable cast whose
/// backward returns f32 gradients; norms, softmaxes and the log-softmax stay in f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Matmuls and activations in bf16.
    Bf16,
}

/// `t` in the dtype of `like` (no-op when they agree: the f32 path runs no cast).
fn as_dtype_of<B: Backend, const D: usize, const E: usize>(t: Tensor<B, D>, like: &Tensor<B, E>) -> Tensor<B, D> {
    let want = like.dtype();
    if t.dtype() == want {
        return t;
    }
    t.cast(FloatDType::from(want))
}

/// `t` in f32 (no-op when it is).
fn to_f32<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    if t.dtype() == DType::F32 {
        t
    } else {
        t.cast(FloatDType::F32)
    }
}

/// `x [.., in] · Wᵀ` for an HF-layout weight `[out, in]`, plus optional bias.
fn linear<B: Backend>(x: Tensor<B, 3>, w: &Param<Tensor<B, 2>>, b: Option<&Param<Tensor<B, 1>>>) -> Tensor<B, 3> {
    let [bsz, t, d_in] = x.dims();
    let w = as_dtype_of(w.val(), &x);
    let d_out = w.dims()[0];
    let y = super::skinny::matmul_nt(x.reshape([bsz * t, d_in]), w);
    let y = match b {
        Some(b) => {
            let b = as_dtype_of(b.val(), &y);
            y + b.unsqueeze::<2>()
        }
        None => y,
    };
    y.reshape([bsz, t, d_out])
}

/// RMSNorm over the last dim, weight `[D]` (HF computes it in f32, as we do; the result returns
/// to the input's dtype).
fn rms_norm<B: Backend>(x: Tensor<B, 3>, w: &Param<Tensor<B, 1>>, eps: f64) -> Tensor<B, 3> {
    if x.dtype() != DType::F32 {
        let y = rms_norm(to_f32(x.clone()), w, eps);
        return as_dtype_of(y, &x);
    }
    let rms = (x.clone().square().mean_dim(2) + eps).sqrt(); // [B, T, 1]
    (x / rms) * w.val().unsqueeze::<3>()
}

/// Qwen3's QK-norm: RMSNorm over each head's E values of `x [B, T, heads·E]` (no-op without a weight).
fn head_norm<B: Backend>(x: Tensor<B, 3>, w: Option<&Param<Tensor<B, 1>>>, heads: usize, eps: f64) -> Tensor<B, 3> {
    let Some(w) = w else { return x };
    let [bsz, t, width] = x.dims();
    rms_norm(x.reshape([bsz, t * heads, width / heads]), w, eps).reshape([bsz, t, width])
}

/// One decoder block. Field names mirror HF's `model.layers.{i}.*` tensors.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// `input_layernorm.weight` [D]
    pub input_layernorm: Param<Tensor<B, 1>>,
    /// `self_attn.q_proj.weight` [H·E, D]
    pub q_proj: Param<Tensor<B, 2>>,
    /// `self_attn.k_proj.weight` [K·E, D]
    pub k_proj: Param<Tensor<B, 2>>,
    /// `self_attn.v_proj.weight` [K·E, D]
    pub v_proj: Param<Tensor<B, 2>>,
    /// q/k/v biases (Qwen2-style), each [out]
    pub q_bias: Option<Param<Tensor<B, 1>>>,
    /// k bias
    pub k_bias: Option<Param<Tensor<B, 1>>>,
    /// v bias
    pub v_bias: Option<Param<Tensor<B, 1>>>,
    /// `self_attn.q_norm.weight` [E]: Qwen3's RMSNorm over each query head
    pub q_norm: Option<Param<Tensor<B, 1>>>,
    /// `self_attn.k_norm.weight` [E]: the same over each key head
    pub k_norm: Option<Param<Tensor<B, 1>>>,
    /// `self_attn.o_proj.weight` [D, H·E]
    pub o_proj: Param<Tensor<B, 2>>,
    /// `post_attention_layernorm.weight` [D]
    pub post_attention_layernorm: Param<Tensor<B, 1>>,
    /// `mlp.gate_proj.weight` [F, D]
    pub gate_proj: Param<Tensor<B, 2>>,
    /// `mlp.up_proj.weight` [F, D]
    pub up_proj: Param<Tensor<B, 2>>,
    /// `mlp.down_proj.weight` [D, F]
    pub down_proj: Param<Tensor<B, 2>>,
}

/// Rotary tables for one forward call: cos and sin, each `[B, 1, T, E/2]`.
#[derive(Clone, Debug)]
pub struct Rope<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
}

impl<B: Backend> Rope<B> {
    /// Tables for explicit per-row positions (`positions[b][t]`), computed in f64 on the host from
    /// the inverse frequencies `[E/2]` ([`ModelConfig::rope_inv_freq`]).
    pub fn new(positions: &[Vec<usize>], inv_freq: &[f64], device: &B::Device) -> Self {
        let (bsz, t, half) = (positions.len(), positions[0].len(), inv_freq.len());
        let mut cos = Vec::with_capacity(bsz * t * half);
        let mut sin = Vec::with_capacity(bsz * t * half);
        for row in positions {
            assert_eq!(row.len(), t, "rope: ragged positions");
            for &p in row {
                for &f in inv_freq {
                    let a = p as f64 * f;
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
        }
        let shape = [bsz, 1, t, half];
        Self {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }

    /// Tables for columns `columns` of left-padded rows: row b's first `pad[b]` columns are padding,
    /// so column i sits at position `i − pad[b]` (padding columns at 0).
    pub fn left_padded(pad: &[usize], columns: std::ops::Range<usize>, inv_freq: &[f64], device: &B::Device) -> Self {
        let positions: Vec<Vec<usize>> = pad
            .iter()
            .map(|&k| columns.clone().map(|i| i.saturating_sub(k)).collect())
            .collect();
        Self::new(&positions, inv_freq, device)
    }

    /// The tables: cos and sin, each `[B, 1, T, E/2]`.
    pub(crate) fn tables(&self) -> (&Tensor<B, 4>, &Tensor<B, 4>) {
        (&self.cos, &self.sin)
    }

    /// HF "rotate-half" rotation of `x [B, heads, T, E]`: pairs (i, i + E/2) rotate together.
    fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let half = x.dims()[3] / 2;
        let (cos, sin) = (as_dtype_of(self.cos.clone(), &x), as_dtype_of(self.sin.clone(), &x));
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.narrow(3, half, half);
        let out1 = x1.clone() * cos.clone() - x2.clone() * sin.clone();
        let out2 = x2 * cos + x1 * sin;
        Tensor::cat(vec![out1, out2], 3)
    }
}

/// Additive attention bias `[B, 1, T, S]`: 0 where a query may attend, a large negative value
/// elsewhere (causal order and left padding). Finite so that all-masked pad rows stay NaN-free.
pub const MASKED: f32 = -1e9;

/// Builds the bias for `t_new` queries at the end of `s_total` keys, where row `b` has its first
/// `pad[b]` key positions masked (left padding).
pub fn attention_bias<B: Backend>(pad: &[usize], t_new: usize, s_total: usize, device: &B::Device) -> Tensor<B, 4> {
    attention_bias_keys(pad, t_new, s_total, s_total, device)
}

/// [`attention_bias`] over a view of `s_keys ≥ s_total` keys (a bucketed cache): the keys past
/// `s_total` are not filled yet and are masked too. `[B, 1, T, s_keys]`.
pub fn attention_bias_keys<B: Backend>(
    pad: &[usize],
    t_new: usize,
    s_total: usize,
    s_keys: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    let mut v = Vec::with_capacity(pad.len() * t_new * s_keys);
    for &p in pad {
        for q in 0..t_new {
            let q_abs = s_total - t_new + q;
            for k in 0..s_keys {
                v.push(if k < p || k > q_abs { MASKED } else { 0.0 });
            }
        }
    }
    Tensor::from_data(TensorData::new(v, [pad.len(), 1, t_new, s_keys]), device)
}

/// Keys/values of one layer `([rows, K, S, E], [rows, K, S, E])`.
pub type LayerKv<B> = (Tensor<B, 4>, Tensor<B, 4>);

/// Where a block's attention finds keys and values besides those of the new tokens.
pub(crate) enum Keys<'a, B: Backend> {
    /// Only the new tokens' own (a full-sequence pass).
    Own,
    /// A decode cache: the new keys are appended to layer `usize`'s buffers first.
    Cache(&'a mut KvCache<B>, usize),
    /// A shared prompt's keys and values `[N, K, Lp, E]` (already one per row) come first.
    Prefix(LayerKv<B>),
}

/// A block's output: the residual stream, the attention probe, and the new tokens' own keys and
/// values after rotary embedding (what a shared-prompt pass records for the rows that follow).
pub(crate) struct BlockOut<B: Backend> {
    pub x: Tensor<B, 3>,
    pub mass: Option<Tensor<B, 2>>,
    /// Present in a [`Keys::Own`] pass.
    pub kv: Option<LayerKv<B>>,
}

impl<B: Backend> Block<B> {
    pub(crate) fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        bias: &Tensor<B, 4>,
        cfg: &ModelConfig,
        keys: Keys<'_, B>,
        probe: Option<&Tensor<B, 4>>,
    ) -> BlockOut<B> {
        let [bsz, t, _] = x.dims();
        let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.kv_heads(), cfg.head_dim());
        let rep = nh / nkv;

        let h = rms_norm(x.clone(), &self.input_layernorm, cfg.rms_norm_eps);
        let q = linear(h.clone(), &self.q_proj, self.q_bias.as_ref());
        let k = linear(h.clone(), &self.k_proj, self.k_bias.as_ref());
        let v = linear(h, &self.v_proj, self.v_bias.as_ref());
        let eps = cfg.rms_norm_eps;
        let q = head_norm(q, self.q_norm.as_ref(), nh, eps);
        let k = head_norm(k, self.k_norm.as_ref(), nkv, eps);
        // [B, T, heads·E] -> [B, heads, T, E]
        let q = rope.apply(q.reshape([bsz, t, nh, hd]).swap_dims(1, 2));
        let k = rope.apply(k.reshape([bsz, t, nkv, hd]).swap_dims(1, 2));
        let v = v.reshape([bsz, t, nkv, hd]).swap_dims(1, 2);

        // Keys/values over all positions so far: [B, K, S, E].
        let (k, v, own) = match keys {
            Keys::Cache(cache, layer) => {
                let (k, v) = cache.append(layer, k, v);
                (k, v, None)
            }
            Keys::Prefix((kp, vp)) => (Tensor::cat(vec![kp, k], 2), Tensor::cat(vec![vp, v], 2), None),
            Keys::Own => (k.clone(), v.clone(), Some((k, v))),
        };
        let s = k.dims()[2];

        // Grouped-query attention without copying K/V: fold the R query heads that share a kv head
        // into the query axis. q [B, H, T, E] -> [B, K, R·T, E] (head h = kv·R + r, row r·T + t).
        let q = q.reshape([bsz, nkv, rep * t, hd]);
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (hd as f64).sqrt()); // [B, K, R·T, S]
        // the softmax in f32 (a no-op cast on the f32 path), the probabilities back to q's dtype
        let scores = to_f32(scores) + bias.clone().repeat_dim(2, rep);
        let probs = as_dtype_of(softmax(scores, 3), &v);
        let mass = probe.map(|keys| attention_mass(probs.clone(), keys, nh, t));
        let ctx = probs.matmul(v); // [B, K, R·T, E]
        let ctx = ctx.reshape([bsz, nh, t, hd]).swap_dims(1, 2).reshape([bsz, t, nh * hd]);
        let x = x + linear(ctx, &self.o_proj, None);
        debug_assert_eq!(bias.dims()[3], s);

        let h = rms_norm(x.clone(), &self.post_attention_layernorm, cfg.rms_norm_eps);
        let gate = silu(linear(h.clone(), &self.gate_proj, None));
        let up = linear(h, &self.up_proj, None);
        BlockOut {
            x: x + linear(gate * up, &self.down_proj, None),
            mass,
            kv: own,
        }
    }
}

/// Attention mass on chosen keys, mean over heads: `probs [B, K, R·T, S]` (head h = kv·R + r, row
/// r·T + t, as laid out by the grouped-query fold) and a 0/1 key mask `keys [B, 1, 1, S]` give
/// `[B, T]`, the share of each query's attention that lands on the masked-in keys.
fn attention_mass<B: Backend>(probs: Tensor<B, 4>, keys: &Tensor<B, 4>, heads: usize, t: usize) -> Tensor<B, 2> {
    let [bsz, _, _, s] = probs.dims();
    let per_head = to_f32(probs).reshape([bsz, heads, t, s]) * keys.clone(); // [B, H, T, S]
    per_head.sum_dim(3).mean_dim(1).reshape([bsz, t])
}

/// The whole causal LM.
#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    /// `model.embed_tokens.weight` [V, D]
    pub embed_tokens: Param<Tensor<B, 2>>,
    /// `model.layers.*`
    pub layers: Vec<Block<B>>,
    /// `model.norm.weight` [D]
    pub norm: Param<Tensor<B, 1>>,
    /// `lm_head.weight` [V, D]; `None` when tied to `embed_tokens`.
    pub lm_head: Option<Param<Tensor<B, 2>>>,
    /// Hyper-parameters (not trainable, not persisted as a tensor).
    #[module(skip)]
    pub config: ModelConfig,
    /// The forward's compute dtype (parameters stay f32).
    #[module(skip)]
    pub precision: Precision,
}

impl<B: Backend> Transformer<B> {
    /// Hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Final hidden states `[B, T, D]` (after the last RMSNorm) for `tokens [B, T]`.
    ///
    /// `positions[b][t]` are rotary positions, `bias` the additive mask `[B, 1, T, S]`. With a cache,
    /// the new keys/values are appended to it and attention runs over everything cached.
    pub fn forward_hidden(
        &self,
        tokens: Tensor<B, 2, Int>,
        rope: &Rope<B>,
        bias: &Tensor<B, 4>,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        self.forward_probed(tokens, rope, bias, cache, None).0
    }

    /// [`Self::forward_hidden`] that also reports, for each new query, the last layer's attention
    /// mass (mean over heads) on the keys that `keys [B, 1, 1, S]` marks with 1 — the attention
    /// probe that Entropy-Tree's importance gate reads. Returns `(hidden [B, T, D], mass [B, T])`.
    pub fn forward_hidden_probed(
        &self,
        tokens: Tensor<B, 2, Int>,
        rope: &Rope<B>,
        bias: &Tensor<B, 4>,
        cache: Option<&mut KvCache<B>>,
        keys: &Tensor<B, 4>,
    ) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let (h, mass) = self.forward_probed(tokens, rope, bias, cache, Some(keys));
        (h, mass.expect("the last layer reports the probe"))
    }

    fn forward_probed(
        &self,
        tokens: Tensor<B, 2, Int>,
        rope: &Rope<B>,
        bias: &Tensor<B, 4>,
        mut cache: Option<&mut KvCache<B>>,
        probe: Option<&Tensor<B, 4>>,
    ) -> (Tensor<B, 3>, Option<Tensor<B, 2>>) {
        let t = tokens.dims()[1];
        let mut x = self.embed(tokens);
        let last = self.layers.len() - 1;
        let mut mass = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let keys = match cache.as_deref_mut() {
                Some(c) => Keys::Cache(c, i),
                None => Keys::Own,
            };
            let out = layer.forward(x, rope, bias, self.config(), keys, probe.filter(|_| i == last));
            (x, mass) = (out.x, out.mass.or(mass));
        }
        if let Some(c) = cache {
            c.advance(t);
        }
        (self.final_norm(x), mass)
    }

    /// Token embeddings `[B, T, D]` of `tokens [B, T]`.
    pub(crate) fn embed(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [bsz, t] = tokens.dims();
        let x =
            self.embed_tokens
                .val()
                .select(0, tokens.reshape([bsz * t]))
                .reshape([bsz, t, self.config().hidden_size]);
        match self.precision {
            Precision::F32 => x,
            Precision::Bf16 => x.cast(FloatDType::BF16),
        }
    }

    /// The same model computing in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The last RMSNorm.
    pub(crate) fn final_norm(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        rms_norm(x, &self.norm, self.config().rms_norm_eps)
    }

    /// The output projection `[V, D]` (the embedding matrix when tied).
    pub fn head_weight(&self) -> Tensor<B, 2> {
        match &self.lm_head {
            Some(w) => w.val(),
            None => self.embed_tokens.val(),
        }
    }

    /// Logits `[B, T, V]` from hidden states `[B, T, D]`, always f32 (the head's matmul runs in
    /// the hidden states' dtype).
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [bsz, t, d] = hidden.dims();
        let w = as_dtype_of(self.head_weight(), &hidden); // [V, D]
        let v = w.dims()[0];
        to_f32(super::skinny::matmul_nt(hidden.reshape([bsz * t, d]), w).reshape([bsz, t, v]))
    }

    /// Plain full-sequence forward (no padding, positions 0..T): logits `[B, T, V]`.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [bsz, t] = tokens.dims();
        let device = tokens.device();
        let cfg = self.config();
        let positions = vec![(0..t).collect::<Vec<_>>(); bsz];
        let rope = Rope::new(&positions, &cfg.rope_inv_freq(), &device);
        let bias = attention_bias(&vec![0; bsz], t, t, &device);
        let h = self.forward_hidden(tokens, &rope, &bias, None);
        self.logits(h)
    }
}
