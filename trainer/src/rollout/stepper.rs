//! The model side of the decode loop (`decoder.rs`): the cache and its row slots, the
//! prefill, one forward per step, and what each step leaves for the rows to read — host logits,
//! or the device sampler's ids and statistics.
//!
//! Active row `b` reads cache row `slots[b]`. Under [`Shapes::Shrink`] the cache holds exactly the
//! active rows (`slots = 0..A`, finished rows dropped, forks repeated by `select_rows`). Under
//! [`Shapes::Fixed`] the cache keeps its rows: a finished row's slot idles (it still runs, fed token
//! 0, and nobody reads it), a fork's extra children take idle slots, and only when none are left
//! does the cache grow, to the next power of two.

use std::ops::Range;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::completion::{Completion, RolloutConfig};
use super::device_step::{DeviceStep, device_step, noise_key};
use super::policy::{DecodeLayers, DecodePolicy, SamplerPlace, Shapes};
use crate::backend::to_host;
use crate::model::transformer::{Rope, attention_bias_keys};
use crate::model::{KvCache, Transformer, host_decode};

/// What the last forward left per cache row.
pub(super) enum StepOut {
    /// Host logits `[rows·V]`.
    Host(Vec<f32>),
    /// The device sampler's ids and statistics, one entry per cache row.
    Device(DeviceStep),
}

/// Cache, row slots and the last step's output.
pub(super) struct Stepper<'m, 'p, B: Backend> {
    pub model: &'m Transformer<B>,
    pub prompts: &'p [Vec<u32>],
    pub cfg: &'p RolloutConfig,
    cache: KvCache<B>,
    /// Cache row of each active row, in batch order.
    pub slots: Vec<usize>,
    /// Left padding of each cache row.
    slot_pad: Vec<usize>,
    /// Output of the last forward, per cache row.
    pub out: StepOut,
    /// Probe value per cache row (empty when no probe runs).
    pub attention: Vec<f32>,
    pub vocab: usize,
    /// Left padding per prompt.
    prompt_pad: Vec<usize>,
}

/// 0/1 key mask `[B, 1, 1, S]`: row b marks `pad[b] + range` (its prompt's probed tokens).
fn probe_mask<B: Backend>(
    ranges: &[Option<Range<usize>>],
    pad: &[usize],
    s: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    let mut m = vec![0f32; pad.len() * s];
    for (b, (r, &p)) in ranges.iter().zip(pad).enumerate() {
        for k in r.clone().unwrap_or(0..0) {
            m[b * s + p + k] = 1.0;
        }
    }
    Tensor::from_data(TensorData::new(m, [pad.len(), 1, 1, s]), device)
}

impl<'m, 'p, B: Backend> Stepper<'m, 'p, B> {
    /// Prefills `[P, L]` (left-padded with id 0, masked; L the longest prompt, bucketed under fixed
    /// shapes) and expands the cache to P·G rows. `device_sampling` asks the device sampler for the
    /// first tokens of `roots` (the P·G root rows).
    pub fn prefill(
        model: &'m Transformer<B>,
        prompts: &'p [Vec<u32>],
        cfg: &'p RolloutConfig,
        probe: Option<&[Option<Range<usize>>]>,
        device_sampling: Option<&[Completion]>,
    ) -> Self {
        let mc = model.config();
        let device = model.embed_tokens.val().device();
        let (np, g, policy) = (prompts.len(), cfg.group_size, &cfg.policy);
        let lmax = policy.bucket(prompts.iter().map(Vec::len).max().expect("non-empty"));
        let pad: Vec<usize> = prompts.iter().map(|p| lmax - p.len()).collect();
        let flat: Vec<i64> = prompts
            .iter()
            .zip(&pad)
            .flat_map(|(p, &k)| std::iter::repeat_n(0, k).chain(p.iter().map(|&t| t as i64)))
            .collect();
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [np, lmax]), &device);
        let rope = Rope::left_padded(&pad, 0..lmax, &mc.rope_inv_freq(), &device);
        let capacity = policy.bucket(lmax + cfg.max_new_tokens);
        let (layers, kv, hd) = (mc.num_hidden_layers, mc.kv_heads(), mc.head_dim());
        let bucket = if policy.shapes == Shapes::Fixed {
            policy.length_bucket
        } else {
            1
        };
        let mut cache = if host_layers(model, policy) {
            KvCache::new_host(layers, np, kv, capacity, hd, &device)
        } else {
            KvCache::new(layers, np, kv, capacity, hd, &device)
        }
        .with_key_bucket(bucket);
        let bias = attention_bias_keys(&pad, lmax, lmax, cache.keys_after(lmax), &device);
        let (hidden, mass) = match probe {
            None => (model.forward_hidden(tokens, &rope, &bias, Some(&mut cache)), None),
            Some(ranges) => {
                let keys = probe_mask(ranges, &pad, cache.keys_after(lmax), &device);
                let (h, m) = model.forward_hidden_probed(tokens, &rope, &bias, Some(&mut cache), &keys);
                (h, Some(to_host(m.narrow(1, lmax - 1, 1)))) // the last query's mass, [P]
            }
        };
        let last = hidden.narrow(1, lmax - 1, 1); // only the last position's logits are needed
        let logits = model.logits(last).squeeze_dim::<2>(1); // [P, V]
        let vocab = logits.dims()[1];
        // Expand to P·G rows: row r answers prompt r / G.
        let expand: Vec<usize> = (0..np * g).map(|r| r / g).collect();
        cache.select_rows(&expand);
        let out = match device_sampling {
            Some(roots) => {
                let keys: Vec<u32> = roots.iter().map(|c| row_key(cfg, c, 0)).collect();
                StepOut::Device(device_step(select_rows(logits, &expand), &keys, &cfg.sampling))
            }
            None => {
                let host = to_host(logits);
                StepOut::Host(
                    expand
                        .iter()
                        .flat_map(|&p| host[p * vocab..(p + 1) * vocab].iter().copied())
                        .collect(),
                )
            }
        };
        let attention = mass.map_or(vec![], |m| expand.iter().map(|&p| m[p]).collect());
        Self {
            model,
            prompts,
            cfg,
            cache,
            slots: (0..np * g).collect(),
            slot_pad: expand.iter().map(|&p| pad[p]).collect(),
            out,
            attention,
            vocab,
            prompt_pad: pad,
        }
    }

    /// Host logits `[V]` of active row `b` (host sampling only).
    pub fn row_logits(&self, b: usize) -> &[f32] {
        match &self.out {
            StepOut::Host(l) => &l[self.slots[b] * self.vocab..(self.slots[b] + 1) * self.vocab],
            StepOut::Device(_) => &[],
        }
    }

    /// Maps the next batch onto cache rows: next row `rows[i]` continues old active row `source[i]`.
    pub fn assign_slots(&mut self, source: &[usize], rows: &[&Completion]) {
        match self.cfg.policy.shapes {
            Shapes::Shrink => {
                let identity = source.len() == self.slots.len() && source.iter().enumerate().all(|(i, &s)| i == s);
                if !identity {
                    self.cache.select_rows(source);
                }
                self.slots = (0..source.len()).collect();
                self.slot_pad = rows.iter().map(|c| self.prompt_pad[c.prompt_index]).collect();
            }
            Shapes::Fixed => self.assign_fixed(source),
        }
    }

    /// Fixed shapes: a row keeps its parent's slot; a fork's extra children take idle slots (the
    /// cache grows to the next power of two only when none are left) and copy the parent's row.
    fn assign_fixed(&mut self, source: &[usize]) {
        let width = self.cache.rows();
        let mut taken = vec![false; width];
        let mut slots: Vec<Option<usize>> = source
            .iter()
            .map(|&b| {
                let s = self.slots[b];
                (!std::mem::replace(&mut taken[s], true)).then_some(s)
            })
            .collect();
        let need = slots.iter().filter(|s| s.is_none()).count();
        let mut free: Vec<usize> = (0..width).filter(|&s| !taken[s]).collect();
        let mut gather: Vec<usize> = (0..width).collect();
        if need > free.len() {
            let grown = (width - free.len() + need).next_power_of_two();
            free.extend(width..grown);
            gather.extend(std::iter::repeat_n(0, grown - width)); // idle until a child lands
            self.slot_pad.resize(grown, 0);
        }
        let mut free = free.into_iter();
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.is_none() {
                let (parent, child) = (self.slots[source[i]], free.next().expect("enough slots"));
                gather[child] = parent;
                self.slot_pad[child] = self.slot_pad[parent];
                *slot = Some(child);
            }
        }
        if gather.iter().enumerate().any(|(i, &s)| i != s) {
            self.cache.select_rows(&gather);
        }
        self.slots = slots.into_iter().map(|s| s.expect("assigned")).collect();
    }

    /// Decodes one token for each active row (`rows[i]` at slot `slots[i]`, fed `tokens[i]`) at
    /// generated position `pos`; idle slots are fed token 0. `device_sampling`: the next step's
    /// draws and statistics run on the device.
    pub fn forward(
        &mut self,
        rows: &[&Completion],
        tokens: &[u32],
        pos: usize,
        probe: Option<&[Option<Range<usize>>]>,
        device_sampling: bool,
    ) {
        let mc = self.model.config();
        let device = self.model.embed_tokens.val().device();
        let width = self.cache.rows();
        let mut fed = vec![0i64; width];
        for (&s, &t) in self.slots.iter().zip(tokens) {
            fed[s] = t as i64;
        }
        let fed = Tensor::<B, 2, Int>::from_data(TensorData::new(fed, [width, 1]), &device);
        let len = self.cache.len();
        let positions: Vec<Vec<usize>> = self.slot_pad.iter().map(|&k| vec![len - k]).collect();
        let rope = Rope::new(&positions, &mc.rope_inv_freq(), &device);
        let s_keys = self.cache.keys_after(1);
        let bias = attention_bias_keys(&self.slot_pad, 1, len + 1, s_keys, &device);
        let keys = probe.map(|ranges| {
            let mut per_slot = vec![None; width];
            for (&s, c) in self.slots.iter().zip(rows) {
                per_slot[s] = ranges[c.prompt_index].clone();
            }
            probe_mask(&per_slot, &self.slot_pad, s_keys, &device)
        });
        let (hidden, mass) = self.layers(fed, &rope, &bias, keys.as_ref());
        if let Some(m) = mass {
            self.attention = to_host(m);
        }
        let logits = self.model.logits(hidden).squeeze_dim::<2>(1); // [rows, V]
        self.out = if device_sampling {
            let mut keys = vec![0u32; width];
            for (&s, c) in self.slots.iter().zip(rows) {
                keys[s] = row_key(self.cfg, c, pos + 1);
            }
            StepOut::Device(device_step(logits, &keys, &self.cfg.sampling))
        } else {
            StepOut::Host(to_host(logits))
        };
    }
}

/// Whether decode steps run the host layers (`model/host_decode.rs`): where they apply (burn-flex,
/// f32, shrinking shapes) and the policy asks for them or, under `auto`, they pay off.
fn host_layers<B: Backend>(model: &Transformer<B>, policy: &DecodePolicy) -> bool {
    policy.shapes == Shapes::Shrink
        && host_decode::supported(model)
        && match policy.layers {
            DecodeLayers::Backend => false,
            DecodeLayers::Host => true,
            DecodeLayers::Auto => host_decode::worthwhile(model.config()),
        }
}

impl<B: Backend> Stepper<'_, '_, B> {
    /// One token per cache row through the layers — the host decode layers when the cache is on
    /// the host, burn's ops otherwise: hidden states `[rows, 1, D]` and, with a probe, the last
    /// layer's attention mass on the marked keys `[rows, 1]`.
    fn layers(
        &mut self,
        fed: Tensor<B, 2, Int>,
        rope: &Rope<B>,
        bias: &Tensor<B, 4>,
        keys: Option<&Tensor<B, 4>>,
    ) -> (Tensor<B, 3>, Option<Tensor<B, 2>>) {
        if self.cache.is_host() {
            // `host_layers` chose a host cache only where the host layers apply
            return host_decode::decode_step(self.model, fed, rope, bias, &mut self.cache, keys);
        }
        let cache = Some(&mut self.cache);
        match keys {
            None => (self.model.forward_hidden(fed, rope, bias, cache), None),
            Some(k) => {
                let (h, m) = self.model.forward_hidden_probed(fed, rope, bias, cache, k);
                (h, Some(m))
            }
        }
    }
}

/// The noise key of completion `c` for its token at generated position `pos`.
pub(super) fn row_key(cfg: &RolloutConfig, c: &Completion, pos: usize) -> u32 {
    let prompt = cfg.first_prompt_index + c.prompt_index;
    noise_key(cfg.seed, prompt, c.sample_index, &c.forks, pos)
}

/// Rows `rows` of `x [P, V]` (repeats allowed).
fn select_rows<B: Backend>(x: Tensor<B, 2>, rows: &[usize]) -> Tensor<B, 2> {
    let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let device = x.device();
    x.select(
        0,
        Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows.len()]), &device),
    )
}

/// Whether this decode draws on the device: the policy asks for it, the device sampler supports the
/// sampling parameters, the hooks neither read nor rewrite logits, and no repetition penalty needs
/// the context.
pub(super) fn samples_on_device(cfg: &RolloutConfig, reads_logits: bool, processes_logits: bool) -> bool {
    cfg.policy.sampler == SamplerPlace::Device
        && super::device_step::supports(&cfg.sampling).is_ok() // a nucleus needs top-k candidates
        && !reads_logits
        && !processes_logits
        && cfg.sampling.repetition_penalty == 1.0
}
