//! `[edis_sweep]`: EDIS's window and thresholds recalibrated per model (`entrl analyze edis`).
//! The EDIS paper tuned τ_b = 1.36 and τ_r = 1.33 on Qwen2.5-Math-1.5B, left the window unstated
//! and warns that the thresholds need recalibrating per model family (SPEC §1(b)). Its procedure
//! is unpublished; ours (every choice a key): thresholds are quantiles of the model's own entropy
//! increases on a labelled calibration share of the problems, the (w, τ_b, τ_r) with the highest
//! AUROC there is kept, and the held-out rest reports it.

use serde::{Deserialize, Serialize};

/// The `[edis_sweep]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdisSweepSection {
    /// Burst windows w swept (the paper's is unstated; SPEC suggests {1, 4, 8, 16}).
    pub windows: Vec<usize>,
    /// Candidate thresholds: these quantiles of the calibration completions' increases
    /// (`H_{t+w} − H_t` for τ_b, `H_t − min_{s<t} H_s` for τ_r); every (τ_b, τ_r) pair is tried.
    pub quantiles: Vec<f64>,
    /// Share of the problems (whole problems, all their samples) used to calibrate; the rest is
    /// the held-out test set every reported figure comes from.
    pub calibration_share: f64,
    /// Seed of the problem split.
    pub seed: u64,
}

impl Default for EdisSweepSection {
    fn default() -> Self {
        Self {
            windows: vec![1, 2, 4, 8, 16],
            quantiles: vec![0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995],
            calibration_share: 0.5,
            seed: 0,
        }
    }
}

impl EdisSweepSection {
    /// Range checks naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.windows.is_empty() || self.windows.contains(&0) {
            return Err("key 'edis_sweep.windows' must be a non-empty list of windows >= 1".into());
        }
        if self.quantiles.is_empty() || self.quantiles.iter().any(|q| !(0.0..=1.0).contains(q)) {
            return Err("key 'edis_sweep.quantiles' must be a non-empty list of values in [0, 1]".into());
        }
        if !(self.calibration_share > 0.0 && self.calibration_share < 1.0) {
            return Err(format!(
                "key 'edis_sweep.calibration_share' must be in (0, 1), got {}",
                self.calibration_share
            ));
        }
        Ok(())
    }
}
