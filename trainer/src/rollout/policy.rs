//! How the decode loop lays out its work on a backend: one code path, two policies.
//!
//! On the CPU, dropping finished rows and attending over exactly the filled cache is fastest
//! (less work, and shapes cost nothing). On a GPU every new shape can trigger a blocking autotune
//! and kernel compilations (`../shared/GPU.md` §1), so the loop keeps its shapes fixed there: a
//! fixed number of rows (finished rows stay as idle slots, masked; forks take idle slots and grow
//! the batch to the next power of two only when none are left), prompts left-padded to a multiple
//! of `length_bucket`, and attention over the cache length rounded up to that bucket with the
//! unfilled keys masked. Sampling and statistics can run on the host (logits read back each step)
//! or on the device ([`super::device_step`]: only ids and statistics come back).

use serde::{Deserialize, Serialize};

/// How the batch's shapes evolve during a decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shapes {
    /// Finished rows leave the batch; attention reads exactly the filled cache (CPU).
    #[default]
    Shrink,
    /// Fixed rows and bucketed lengths, masked (GPU).
    Fixed,
}

/// Where tokens are drawn and per-token statistics computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerPlace {
    /// f64 statistics and seeded ChaCha draws on the host from read-back logits.
    #[default]
    Host,
    /// Gumbel-max with counter-based noise and f32 statistics on the device. Decoders whose hooks
    /// read or rewrite logits (EM-INF, adaptive temperature, Entropy-Tree), a repetition penalty,
    /// and a nucleus without top-k candidates still read logits back.
    Device,
}

/// Which code runs a decode step's layers (prefill and training always run burn's ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecodeLayers {
    /// The host layers where they apply and pay off: burn-flex, f32, shrinking shapes and
    /// projections large enough for the skinny kernel (SmolLM2-135M; not the quickstart's model).
    #[default]
    Auto,
    /// The host layers wherever they apply (burn-flex, f32, shrinking shapes).
    Host,
    /// burn's tensor ops, as in training.
    Backend,
}

/// The decode loop's layout policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodePolicy {
    /// Shrinking or fixed shapes.
    pub shapes: Shapes,
    /// Host or device sampling.
    pub sampler: SamplerPlace,
    /// Length bucket of the fixed-shape policy (prompt columns and attended keys are multiples).
    pub length_bucket: usize,
    /// Host decode layers or burn's ops (`model/host_decode.rs`).
    #[serde(default)]
    pub layers: DecodeLayers,
}

impl Default for DecodePolicy {
    /// The CPU's policy: shrinking shapes, host sampling.
    fn default() -> Self {
        Self {
            shapes: Shapes::Shrink,
            sampler: SamplerPlace::Host,
            length_bucket: 64,
            layers: DecodeLayers::Auto,
        }
    }
}

impl DecodePolicy {
    /// Lengths are multiples of this: the length bucket under fixed shapes, 1 when shrinking.
    /// Training batches (SFT rows, RL prompt and completion columns) follow it too.
    pub fn length_multiple(&self) -> usize {
        match self.shapes {
            Shapes::Shrink => 1,
            Shapes::Fixed => self.length_bucket.max(1),
        }
    }

    /// `n` rounded up to [`Self::length_multiple`].
    pub fn bucket(&self, n: usize) -> usize {
        n.div_ceil(self.length_multiple()) * self.length_multiple()
    }
}
