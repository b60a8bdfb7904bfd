//! The decode step's layers on the host, for burn-flex in f32: one token per row (T = 1), the
//! whole model in plain loops over the weights' own memory and a host key/value cache
//! ([`super::cache::HostKv`]).
//!
//! Why: at 16 rows a SmolLM2 decode step spent ~49 of its 91 ms forward in ~45 small burn ops per
//! layer (RMSNorm, rope's `narrow`/`cat` on strided views, the attention's reshapes, softmax,
//! SiLU, residuals), each allocating and walking `[16, 576]`-sized tensors (docs/LOG.md). Here a
//! layer is: RMSNorm, q/k/v by the skinny kernel (the same products as the backend path), rope in
//! place, the new key and value written into the cache, attention per (row, kv head) on rayon's
//! threads (scores by the skinny kernel, softmax, the probability-weighted sum of values with
//! SIMD), the output projection, RMSNorm, SwiGLU and residuals.
//!
//! The arithmetic is the backend path's (same formulas, same order within each product); sums in
//! the norms and softmax may round differently, so results agree to float tolerance, not bitwise
//! (`tests/host_decode.rs`).

use std::any::{Any, TypeId};

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Tensor, TensorData};
use pulp::{Simd, WithSimd};
use rayon::prelude::*;

use super::cache::{HostKv, KvCache};
use super::config::ModelConfig;
use super::skinny;
use super::transformer::{Block, Precision, Rope, Transformer};
use crate::backend::to_host;

type FlexFloat = <Flex as burn::tensor::backend::BackendTypes>::FloatTensorPrimitive;

/// Whether the host layers can run `model`: the backend is burn-flex and the model computes in f32.
pub fn supported<B: Backend>(model: &Transformer<B>) -> bool {
    TypeId::of::<B>() == TypeId::of::<Flex>() && model.precision == Precision::F32
}

/// Whether they pay off (the `auto` choice): the projections are large enough for the skinny
/// kernel, as for SmolLM2-135M. Below that (the quickstart's 128-wide model) burn's ops are cheap
/// and the backend path keeps its results.
pub fn worthwhile(cfg: &ModelConfig) -> bool {
    cfg.hidden_size * cfg.hidden_size >= skinny::MIN_WEIGHT
}

/// A parameter read in place: the burn-flex tensor kept alive (contiguous f32).
struct HostParam(FlexFloat);

impl HostParam {
    fn of<B: Backend, const D: usize>(t: Tensor<B, D>) -> Self {
        let t: Tensor<Flex, D> = *(Box::new(t) as Box<dyn Any>)
            .downcast()
            .expect("host decode layers run on burn-flex only (see `supported`)");
        let p = t.into_primitive().tensor();
        assert_eq!(p.dtype(), DType::F32, "host decode layers need f32 parameters");
        Self(if p.is_contiguous() { p } else { p.to_contiguous() })
    }

    fn slice(&self) -> &[f32] {
        self.0.as_slice::<f32>().expect("contiguous f32")
    }
}

/// One block's parameters, read in place.
struct LayerParams {
    input_norm: HostParam,
    q: HostParam,
    k: HostParam,
    v: HostParam,
    biases: [Option<HostParam>; 3],
    q_norm: Option<HostParam>,
    k_norm: Option<HostParam>,
    o: HostParam,
    post_norm: HostParam,
    gate: HostParam,
    up: HostParam,
    down: HostParam,
}

impl LayerParams {
    fn of<B: Backend>(b: &Block<B>) -> Self {
        let opt = |p: &Option<burn::module::Param<Tensor<B, 1>>>| p.as_ref().map(|p| HostParam::of(p.val()));
        Self {
            input_norm: HostParam::of(b.input_layernorm.val()),
            q: HostParam::of(b.q_proj.val()),
            k: HostParam::of(b.k_proj.val()),
            v: HostParam::of(b.v_proj.val()),
            biases: [opt(&b.q_bias), opt(&b.k_bias), opt(&b.v_bias)],
            q_norm: opt(&b.q_norm),
            k_norm: opt(&b.k_norm),
            o: HostParam::of(b.o_proj.val()),
            post_norm: HostParam::of(b.post_attention_layernorm.val()),
            gate: HostParam::of(b.gate_proj.val()),
            up: HostParam::of(b.up_proj.val()),
            down: HostParam::of(b.down_proj.val()),
        }
    }
}

/// What every layer of one step shares: rows, shapes, rope tables, the bias and the probe.
struct StepInputs<'a> {
    rows: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f64,
    /// cos and sin `[rows, E/2]` at each row's position.
    cos: &'a [f32],
    sin: &'a [f32],
    /// Additive attention bias `[rows, S]` (S = filled keys after this step's append).
    bias: &'a [f32],
    keys: usize,
    /// Position this step writes.
    pos: usize,
}

/// One decode step on the host: `tokens [B, 1]`, the step's `rope` and `bias [B, 1, 1, S]`, the
/// host cache (advanced by one). Returns the final hidden states `[B, 1, D]` (after the last
/// RMSNorm) and, with a probe `keys [B, 1, 1, S]`, the last layer's attention mass on the marked
/// keys (mean over heads) `[B, 1]`.
pub(crate) fn decode_step<B: Backend>(
    model: &Transformer<B>,
    tokens: Tensor<B, 2, Int>,
    rope: &Rope<B>,
    bias: &Tensor<B, 4>,
    cache: &mut KvCache<B>,
    probe: Option<&Tensor<B, 4>>,
) -> (Tensor<B, 3>, Option<Tensor<B, 2>>) {
    let cfg = model.config();
    let device = tokens.device();
    let ids: Vec<i64> = tokens.into_data().convert::<i64>().to_vec::<i64>().expect("int tensor");
    let (rows, d) = (ids.len(), cfg.hidden_size);
    let (cos, sin) = rope.tables();
    let (cos, sin) = (to_host(cos.clone()), to_host(sin.clone()));
    let (bias_h, keys) = (to_host(bias.clone()), bias.dims()[3]);
    let probe_h = probe.map(|p| to_host(p.clone()));
    let pos = cache.len();
    let step = StepInputs {
        rows,
        heads: cfg.num_attention_heads,
        kv_heads: cfg.kv_heads(),
        head_dim: cfg.head_dim(),
        eps: cfg.rms_norm_eps,
        cos: &cos,
        sin: &sin,
        bias: &bias_h,
        keys,
        pos,
    };
    assert_eq!(keys, pos + 1, "host decode layers attend over exactly the filled keys");

    let embed = HostParam::of(model.embed_tokens.val());
    let table = embed.slice();
    let mut x: Vec<f32> = ids
        .iter()
        .flat_map(|&t| table[t as usize * d..(t as usize + 1) * d].iter().copied())
        .collect();
    let host = cache.host_mut().expect("host decode layers need a host cache");
    assert!(
        pos < host.capacity,
        "kv cache overflow: {} > {}",
        pos + 1,
        host.capacity
    );
    let last = model.layers.len() - 1;
    let mut mass = None;
    for (i, block) in model.layers.iter().enumerate() {
        let params = LayerParams::of(block);
        let probe = probe_h.as_deref().filter(|_| i == last);
        mass = layer(&params, &step, &mut x, host, i, probe).or(mass);
    }
    cache.advance(1);
    let hidden = rms_norm(&x, d, HostParam::of(model.norm.val()).slice(), cfg.rms_norm_eps);
    let hidden = Tensor::from_data(TensorData::new(hidden, [rows, 1, d]), &device);
    let mass = mass.map(|m| Tensor::from_data(TensorData::new(m, [rows, 1]), &device));
    (hidden, mass)
}

/// One block on `x [rows, D]` in place; returns the probe's mass `[rows]` when asked.
fn layer(
    p: &LayerParams,
    s: &StepInputs,
    x: &mut [f32],
    cache: &mut HostKv,
    index: usize,
    probe: Option<&[f32]>,
) -> Option<Vec<f32>> {
    let (rows, d, e) = (s.rows, x.len() / s.rows, s.head_dim);
    let (qw, kw) = (s.heads * e, s.kv_heads * e);
    let h = rms_norm(x, d, p.input_norm.slice(), s.eps);
    let [mut q, mut k, v] = linear3(&h, rows, [(&p.q, qw), (&p.k, kw), (&p.v, kw)], &p.biases);
    if let Some(n) = &p.q_norm {
        q = rms_norm(&q, e, n.slice(), s.eps);
    }
    if let Some(n) = &p.k_norm {
        k = rms_norm(&k, e, n.slice(), s.eps);
    }
    rotate(&mut q, s.heads, s);
    rotate(&mut k, s.kv_heads, s);
    let (mut kb, mut vb) = std::mem::take(&mut cache.layers[index]);
    for b in 0..rows {
        for g in 0..s.kv_heads {
            let (src, dst) = ((b * s.kv_heads + g) * e, cache.at(b, g, s.pos));
            kb[dst..dst + e].copy_from_slice(&k[src..src + e]);
            vb[dst..dst + e].copy_from_slice(&v[src..src + e]);
        }
    }
    let (ctx, mass) = attention(&q, &kb, &vb, cache, s, probe);
    cache.layers[index] = (kb, vb);
    add(x, &skinny::product(&ctx, rows, p.o.slice(), d, qw));

    let h = rms_norm(x, d, p.post_norm.slice(), s.eps);
    let f = p.gate.slice().len() / d;
    let mut gate_up = skinny::products(&h, rows, &[(p.gate.slice(), f), (p.up.slice(), f)], d);
    let (up, mut act) = (gate_up.pop().expect("up"), gate_up.pop().expect("gate"));
    // SiLU(gate) · up, rows in parallel (a sigmoid per element: 46k `exp`s per layer at 16 rows)
    act.par_chunks_mut(f)
        .zip(up.par_chunks(f))
        .for_each(|(g, u)| g.iter_mut().zip(u).for_each(|(g, &u)| *g = *g * sigmoid(*g) * u));
    add(x, &skinny::product(&act, rows, p.down.slice(), d, f));
    mass
}

/// burn's sigmoid in f32: `1 / (1 + exp(−x))`.
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

/// q, k and v: `h [rows, D] · Wᵀ (+ bias)` → `[rows, out]` for each of the three weights, in
/// one parallel pass.
fn linear3(h: &[f32], rows: usize, ws: [(&HostParam, usize); 3], biases: &[Option<HostParam>; 3]) -> [Vec<f32>; 3] {
    let d = h.len() / rows;
    let slices: Vec<(&[f32], usize)> = ws.iter().map(|(w, n)| (w.slice(), *n)).collect();
    let mut ys = skinny::products(h, rows, &slices, d).into_iter();
    std::array::from_fn(|i| {
        let mut y = ys.next().expect("three products");
        if let Some(b) = &biases[i] {
            y.chunks_mut(ws[i].1).for_each(|r| add(r, b.slice()));
        }
        y
    })
}

/// RMSNorm over chunks of `width` (rows, or heads for Qwen3's QK-norm), as the backend path:
/// `x / sqrt(mean(x²) + eps) · w`.
fn rms_norm(x: &[f32], width: usize, w: &[f32], eps: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(width) {
        let mean = row.iter().map(|v| v * v).sum::<f32>() / width as f32;
        let rms = (mean + eps as f32).sqrt();
        out.extend(row.iter().zip(w).map(|(v, w)| v / rms * w));
    }
    out
}

/// HF's rotate-half rotary embedding of `x [rows, heads·E]` in place, row b at its own position.
fn rotate(x: &mut [f32], heads: usize, s: &StepInputs) {
    let half = s.head_dim / 2;
    for (b, row) in x.chunks_mut(heads * s.head_dim).enumerate() {
        let (cos, sin) = (&s.cos[b * half..(b + 1) * half], &s.sin[b * half..(b + 1) * half]);
        for head in row.chunks_mut(s.head_dim) {
            let (x1, x2) = head.split_at_mut(half);
            for i in 0..half {
                let (a, c) = (x1[i], x2[i]);
                x1[i] = a * cos[i] - c * sin[i];
                x2[i] = c * cos[i] + a * sin[i];
            }
        }
    }
}

/// Grouped-query attention of `q [rows, H·E]` over the cache's filled keys; one task per
/// (row, kv head), whose R query heads share it. Returns the context `[rows, H·E]` and, with a
/// probe `[rows, S]`, the mass on the marked keys, mean over heads, `[rows]`.
fn attention(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    cache: &HostKv,
    s: &StepInputs,
    probe: Option<&[f32]>,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (e, n, rep) = (s.head_dim, s.keys, s.heads / s.kv_heads);
    let scale = (1.0 / (e as f64).sqrt()) as f32;
    let mut ctx = vec![0f32; s.rows * s.heads * e];
    let masses: Vec<f32> = ctx
        .par_chunks_mut(rep * e)
        .enumerate()
        .map(|(task, out)| {
            let (b, g) = (task / s.kv_heads, task % s.kv_heads);
            let qs = &q[(b * s.heads + g * rep) * e..][..rep * e];
            let start = cache.at(b, g, 0);
            let (ks, vs) = (&keys[start..start + n * e], &values[start..start + n * e]);
            let mut probs = vec![0f32; rep * n]; // [R, S]
            skinny::block_product(qs, rep, ks, n, e, &mut probs);
            let bias = &s.bias[b * n..(b + 1) * n];
            for row in probs.chunks_mut(n) {
                row.iter_mut().zip(bias).for_each(|(p, m)| *p = *p * scale + m);
                softmax(row);
            }
            pulp::Arch::new().dispatch(WeightedSum {
                probs: &probs,
                values: vs,
                width: e,
                out,
            });
            probe.map_or(0.0, |marks| {
                let marks = &marks[b * n..(b + 1) * n];
                probs
                    .chunks(n)
                    .map(|row| row.iter().zip(marks).map(|(p, m)| p * m).sum::<f32>())
                    .sum()
            })
        })
        .collect();
    let mass = probe.map(|_| {
        masses
            .chunks(s.kv_heads)
            .map(|m| m.iter().sum::<f32>() / s.heads as f32)
            .collect()
    });
    (ctx, mass)
}

/// burn's softmax: `exp(x − max) / Σ exp(x − max)`.
fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter_mut().for_each(|x| *x = (*x - max).exp());
    let sum: f32 = row.iter().sum();
    row.iter_mut().for_each(|x| *x /= sum);
}

/// `out [R, E] = probs [R, S] · values [S, E]`, vectorised over E.
struct WeightedSum<'a> {
    probs: &'a [f32],
    values: &'a [f32],
    width: usize,
    out: &'a mut [f32],
}

impl WithSimd for WeightedSum<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let WeightedSum {
            probs,
            values,
            width,
            out,
        } = self;
        let n = values.len() / width;
        for (r, o) in out.chunks_mut(width).enumerate() {
            let (oh, ot) = S::as_mut_simd_f32s(o);
            for (j, v) in values.chunks(width).enumerate() {
                let p = probs[r * n + j];
                let (vh, vt) = S::as_simd_f32s(v);
                let pv = simd.splat_f32s(p);
                oh.iter_mut()
                    .zip(vh)
                    .for_each(|(a, b)| *a = simd.mul_add_e_f32s(pv, *b, *a));
                ot.iter_mut().zip(vt).for_each(|(a, b)| *a += p * b);
            }
        }
    }
}
