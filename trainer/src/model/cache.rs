//! Key/value cache owned by the caller (the rollout engine), never hidden inside the model.
//!
//! Each layer holds preallocated buffers `[B, K, S_max, E]`; a step writes its new keys at
//! `len..len+T` and attention reads the `0..len+T` view. Rows are addressable: `select_rows`
//! repeats a prefilled prompt for the G samples of its group, drops finished rows, or copies a row
//! to forked children.
//!
//! Two storages: backend tensors (burn-flex writes them in place when a buffer is uniquely owned;
//! the GPU's only choice), or plain host vectors ([`HostKv`]) that the host decode layer
//! (`model/host_decode.rs`) reads and writes directly, with no tensor op per step.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::backend::to_host;

/// Host buffers: per layer, keys and values `[rows, K, capacity, E]` in row-major order.
#[derive(Debug, Clone)]
pub struct HostKv {
    /// Rows in the buffers.
    pub rows: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Positions per row.
    pub capacity: usize,
    /// Values per head.
    pub head_dim: usize,
    /// `(keys, values)` per layer.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl HostKv {
    /// Offset of `(row, head, position)` in a layer's buffer.
    pub fn at(&self, row: usize, head: usize, pos: usize) -> usize {
        ((row * self.kv_heads + head) * self.capacity + pos) * self.head_dim
    }

    /// Keeps (or repeats) rows, copying only the first `filled` positions of each head.
    fn select_rows(&mut self, rows: &[usize], filled: usize) {
        // dropping rows (increasing, each moving towards the front) compacts the buffers in place
        let in_place = rows.len() <= self.rows
            && rows.iter().enumerate().all(|(i, &r)| r >= i)
            && rows.windows(2).all(|w| w[0] < w[1]);
        let mut layers = std::mem::take(&mut self.layers);
        for buf in layers.iter_mut().flat_map(|(k, v)| [k, v]) {
            if in_place {
                // each copy reads a row not yet overwritten
                for (i, &r) in rows.iter().enumerate().filter(|(i, r)| *i != **r) {
                    self.copy_row(buf, r, i, filled);
                }
                buf.truncate(self.at(rows.len(), 0, 0));
            } else {
                let mut out = vec![0f32; self.at(rows.len(), 0, 0)];
                for (i, &r) in rows.iter().enumerate() {
                    self.copy_row_to(buf, r, &mut out, i, filled);
                }
                *buf = out;
            }
        }
        self.layers = layers;
        self.rows = rows.len();
    }

    /// Copies the first `filled` positions of every head of row `from` onto row `to` of `buf`.
    fn copy_row(&self, buf: &mut [f32], from: usize, to: usize, filled: usize) {
        for h in 0..self.kv_heads {
            let src = self.at(from, h, 0);
            buf.copy_within(src..src + filled * self.head_dim, self.at(to, h, 0));
        }
    }

    /// The same from row `from` of `buf` onto row `to` of another buffer `out`.
    fn copy_row_to(&self, buf: &[f32], from: usize, out: &mut [f32], to: usize, filled: usize) {
        let span = filled * self.head_dim;
        for h in 0..self.kv_heads {
            let (src, dst) = (self.at(from, h, 0), self.at(to, h, 0));
            out[dst..dst + span].copy_from_slice(&buf[src..src + span]);
        }
    }

    /// Writes `[rows, K, t, E]` values at positions `start..start + t` of `buf`.
    fn write(&self, buf: &mut [f32], new: &[f32], start: usize, t: usize) {
        let e = self.head_dim;
        for b in 0..self.rows {
            for h in 0..self.kv_heads {
                let src = (b * self.kv_heads + h) * t * e;
                let dst = self.at(b, h, start);
                buf[dst..dst + t * e].copy_from_slice(&new[src..src + t * e]);
            }
        }
    }

    /// Positions `0..s` of a layer's buffer as `[rows, K, s, E]`.
    fn view(&self, buf: &[f32], s: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.kv_heads * s * self.head_dim);
        for b in 0..self.rows {
            for h in 0..self.kv_heads {
                let start = self.at(b, h, 0);
                out.extend_from_slice(&buf[start..start + s * self.head_dim]);
            }
        }
        out
    }
}

/// Where the buffers live.
#[derive(Debug)]
enum Storage<B: Backend> {
    /// Backend tensors `[B, K, S_max, E]` per layer (taken out while a layer appends).
    Tensors(Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>),
    /// Host vectors.
    Host(HostKv),
}

/// Per-layer key/value buffers plus the number of filled positions (shared by all rows: rows are
/// left-padded so that every row decodes in lockstep).
#[derive(Debug)]
pub struct KvCache<B: Backend> {
    storage: Storage<B>,
    len: usize,
    capacity: usize,
    /// Attention reads the filled length rounded up to a multiple of this (1 = exactly the filled
    /// keys); the unfilled keys in the view must be masked by the caller's bias.
    key_bucket: usize,
    device: B::Device,
}

impl<B: Backend> KvCache<B> {
    /// Empty buffers for `batch` rows and up to `capacity` positions, as backend tensors.
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
        Self::empty(Storage::Tensors(layers), capacity, device)
    }

    /// [`Self::new`] with host vectors (the host decode layer's cache).
    pub fn new_host(
        num_layers: usize,
        batch: usize,
        kv_heads: usize,
        capacity: usize,
        head_dim: usize,
        device: &B::Device,
    ) -> Self {
        let size = batch * kv_heads * capacity * head_dim;
        let host = HostKv {
            rows: batch,
            kv_heads,
            capacity,
            head_dim,
            layers: (0..num_layers).map(|_| (vec![0f32; size], vec![0f32; size])).collect(),
        };
        Self::empty(Storage::Host(host), capacity, device)
    }

    fn empty(storage: Storage<B>, capacity: usize, device: &B::Device) -> Self {
        Self {
            storage,
            len: 0,
            capacity,
            key_bucket: 1,
            device: device.clone(),
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
        match &self.storage {
            Storage::Tensors(layers) => match layers.first() {
                Some(Some((k, _))) => k.dims()[0],
                _ => 0,
            },
            Storage::Host(h) => h.rows,
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

    /// Whether the buffers are host vectors.
    pub fn is_host(&self) -> bool {
        matches!(self.storage, Storage::Host(_))
    }

    /// The host buffers, when the cache keeps them on the host.
    pub fn host_mut(&mut self) -> Option<&mut HostKv> {
        match &mut self.storage {
            Storage::Host(h) => Some(h),
            Storage::Tensors(_) => None,
        }
    }

    /// Writes `k, v [B, K, T, E]` for `layer` at the current end and returns the views
    /// `[B, K, S, E]`, S = [`Self::keys_after`]`(T)` (the filled `len+T` unless bucketed).
    pub fn append(&mut self, layer: usize, k: Tensor<B, 4>, v: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let t = k.dims()[2];
        let end = self.len + t;
        assert!(end <= self.capacity, "kv cache overflow: {end} > {}", self.capacity);
        let s = self.keys_after(t);
        let (len, device) = (self.len, self.device.clone());
        match &mut self.storage {
            Storage::Tensors(layers) => {
                let [b, h, _, e] = k.dims();
                let (kb, vb) = layers[layer].take().expect("kv cache layer in use");
                let kb = kb.slice_assign([0..b, 0..h, len..end, 0..e], k);
                let vb = vb.slice_assign([0..b, 0..h, len..end, 0..e], v);
                let views = (kb.clone().narrow(2, 0, s), vb.clone().narrow(2, 0, s));
                layers[layer] = Some((kb, vb));
                views
            }
            Storage::Host(host) => {
                let (kh, vh) = (to_host(k.clone()), to_host(v.clone()));
                let (mut kb, mut vb) = std::mem::take(&mut host.layers[layer]);
                host.write(&mut kb, &kh, len, t);
                host.write(&mut vb, &vh, len, t);
                // a prefill into an empty cache attends over exactly its own keys
                let views = if len == 0 && s == t {
                    (k, v)
                } else {
                    let shape = [host.rows, host.kv_heads, s, host.head_dim];
                    let view = |buf: &[f32]| Tensor::from_data(TensorData::new(host.view(buf, s), shape), &device);
                    (view(&kb), view(&vb))
                };
                host.layers[layer] = (kb, vb);
                views
            }
        }
    }

    /// Marks `t` more positions as filled (called once per forward, after all layers).
    pub fn advance(&mut self, t: usize) {
        self.len += t;
    }

    /// Keeps (or repeats) rows: new row `i` is old row `rows[i]`.
    pub fn select_rows(&mut self, rows: &[usize]) {
        let len = self.len;
        match &mut self.storage {
            Storage::Host(host) => host.select_rows(rows, len),
            Storage::Tensors(layers) => {
                let Some(Some((k0, _))) = layers.first() else {
                    return;
                };
                let device = k0.device();
                let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
                let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows.len()]), &device);
                for slot in layers {
                    let (k, v) = slot.take().expect("kv cache layer in use");
                    *slot = Some((k.select(0, idx.clone()), v.select(0, idx.clone())));
                }
            }
        }
    }
}
