//! Key/value cache owned by the caller (the rollout engine), never hidden inside the model.
//!
//! Each layer holds preallocated buffers `[B, K, S_max, E]`; a step writes its new keys at
//! `len..len+T` in place (burn-flex writes in place when the buffer is uniquely owned) and attention
//! reads the `0..len+T` view. Rows are addressable: `select_rows` repeats a prefilled prompt for the
//! G samples of its group, drops finished rows, or copies a row to forked children.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// Per-layer key/value buffers plus the number of filled positions (shared by all rows: rows are
/// left-padded so that every row decodes in lockstep).
#[derive(Debug)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    len: usize,
    capacity: usize,
    /// Attention reads the filled length rounded up to a multiple of this (1 = exactly the filled
    /// keys); the unfilled keys in the view must be masked by the caller's bias.
    key_bucket: usize,
}

impl<B: Backend> KvCache<B> {
    /// Empty buffers for `batch` rows and up to `capacity` positions.
    pub fn new(
        num_layers: usize,
        batch: usize,
        kv_heads: usize,
        capacity: usize,
        head_dim: usize,
        device: &B::Device,
    ) -> Self {
        let layers = (0..num_layers)
            .map(|_| {
                let z = || Tensor::zeros([batch, kv_heads, capacity, head_dim], device);
                Some((z(), z()))
            })
            .collect();
        Self {
            layers,
            len: 0,
            capacity,
            key_bucket: 1,
        }
    }

    /// Attention views of later appends cover the filled length rounded up to a multiple of
    /// `bucket` (capped at the capacity): fixed shapes for GPU kernels, unfilled keys masked.
    pub fn with_key_bucket(mut self, bucket: usize) -> Self {
        self.key_bucket = bucket.max(1);
        self
    }

    /// Keys an attention view holds once `t` more positions are appended.
    pub fn keys_after(&self, t: usize) -> usize {
        ((self.len + t).div_ceil(self.key_bucket) * self.key_bucket).min(self.capacity)
    }

    /// Rows in the buffers.
    pub fn rows(&self) -> usize {
        match self.layers.first() {
            Some(Some((k, _))) => k.dims()[0],
            _ => 0,
        }
    }

    /// Filled positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first forward.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum positions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Writes `k, v [B, K, T, E]` for `layer` at the current end and returns the views
    /// `[B, K, S, E]`, S = [`Self::keys_after`]`(T)` (the filled `len+T` unless bucketed).
    pub fn append(&mut self, layer: usize, k: Tensor<B, 4>, v: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let t = k.dims()[2];
        let end = self.len + t;
        assert!(end <= self.capacity, "kv cache overflow: {end} > {}", self.capacity);
        let [b, h, _, e] = k.dims();
        let (kb, vb) = self.layers[layer].take().expect("kv cache layer in use");
        let kb = kb.slice_assign([0..b, 0..h, self.len..end, 0..e], k);
        let vb = vb.slice_assign([0..b, 0..h, self.len..end, 0..e], v);
        let s = self.keys_after(t);
        let views = (kb.clone().narrow(2, 0, s), vb.clone().narrow(2, 0, s));
        self.layers[layer] = Some((kb, vb));
        views
    }

    /// Marks `t` more positions as filled (called once per forward, after all layers).
    pub fn advance(&mut self, t: usize) {
        self.len += t;
    }

    /// Keeps (or repeats) rows: new row `i` is old row `rows[i]`.
    pub fn select_rows(&mut self, rows: &[usize]) {
        let Some(Some((k0, _))) = self.layers.first() else {
            return;
        };
        let device = k0.device();
        let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows.len()]), &device);
        for slot in &mut self.layers {
            let (k, v) = slot.take().expect("kv cache layer in use");
            *slot = Some((k.select(0, idx.clone()), v.select(0, idx.clone())));
        }
    }
}
