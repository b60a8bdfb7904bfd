//! Adaptive temperature, EM-INF's baseline (METHODS §3): per step, the temperature `T ∈
//! [t_min, t_max]` whose distribution's entropy reaches `target = max(δ, ratio·H0)`, found by
//! bisection; skipped (T = 1) when `H0 ≤ δ`. The released processor stops when
//! `|H(T) − target| < tol` or after `max_iter` midpoints and keeps the last midpoint. Entropies
//! use `−Σ p·ln(p + 1e-9)`, as released.

use serde::{Deserialize, Serialize};

/// The `+ε` inside the released entropy's logarithm.
const LOG_EPS: f64 = 1e-9;

/// The processor's knobs. `Default` is the released script's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveTemperatureConfig {
    /// Lowest temperature searched.
    pub t_min: f64,
    /// Highest temperature searched (1: the temperature only goes down).
    pub t_max: f64,
    /// Most bisection midpoints.
    pub max_iter: usize,
    /// Stop when the entropy is this close to the target (nats).
    pub tol: f64,
    /// Target entropy as a share of the raw entropy (the paper's α).
    pub ratio: f64,
    /// δ: entropy floor of the target; steps with `H0 ≤ δ` are left alone.
    pub threshold: f64,
}

impl Default for AdaptiveTemperatureConfig {
    fn default() -> Self {
        Self::released()
    }
}

impl AdaptiveTemperatureConfig {
    /// The class's own defaults: ratio 0.2, δ 1e-6.
    pub fn class_defaults() -> Self {
        Self {
            t_min: 0.01,
            t_max: 1.0,
            max_iter: 100,
            tol: 0.1,
            ratio: 0.2,
            threshold: 1e-6,
        }
    }

    /// The released script (`adaptive_temp_eval.sh`): ratio 0.85, δ 1e-5.
    pub fn released() -> Self {
        Self {
            ratio: 0.85,
            threshold: 1e-5,
            ..Self::class_defaults()
        }
    }

    /// The paper's α (best in 0.4–0.6), on the released script's other values: one arm of a sweep.
    pub fn paper_alpha(alpha: f64) -> Self {
        Self {
            ratio: alpha,
            ..Self::released()
        }
    }

    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.t_min > 0.0 && self.t_min < self.t_max && self.t_max.is_finite()) {
            return Err(format!(
                "need 0 < t_min < t_max, got t_min {} t_max {}",
                self.t_min, self.t_max
            ));
        }
        if self.max_iter == 0 {
            return Err("max_iter must be >= 1".into());
        }
        if !(self.tol > 0.0 && self.tol.is_finite()) {
            return Err(format!("tol must be > 0, got {}", self.tol));
        }
        if !(self.ratio > 0.0 && self.ratio <= 1.0) {
            return Err(format!("ratio must be in (0, 1], got {}", self.ratio));
        }
        if !(self.threshold >= 0.0 && self.threshold.is_finite()) {
            return Err(format!("threshold must be >= 0, got {}", self.threshold));
        }
        Ok(())
    }
}

/// `−Σ p·ln(p + ε)` of `softmax(z / t)`, in f64.
fn entropy_at(z: &[f32], t: f64) -> f64 {
    let max = z.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64 / t));
    let e: Vec<f64> = z.iter().map(|&x| (x as f64 / t - max).exp()).collect();
    let s: f64 = e.iter().sum();
    -e.iter().map(|&x| (x / s) * (x / s + LOG_EPS).ln()).sum::<f64>()
}

/// What one step chose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adapted {
    /// The temperature applied (1 when skipped).
    pub temperature: f64,
    /// Bisection midpoints evaluated.
    pub iterations: usize,
}

/// Divides `logits` in place by the bisected temperature.
pub fn adapt(logits: &mut [f32], cfg: &AdaptiveTemperatureConfig) -> Adapted {
    let h0 = entropy_at(logits, 1.0);
    let target = cfg.threshold.max(cfg.ratio * h0);
    let (mut t, mut iterations) = (1.0, 0);
    if h0 > cfg.threshold {
        let (mut lo, mut hi) = (cfg.t_min, cfg.t_max);
        for _ in 0..cfg.max_iter {
            t = (lo + hi) / 2.0;
            iterations += 1;
            let h = entropy_at(logits, t);
            if (h - target).abs() < cfg.tol {
                break;
            } else if h < target {
                lo = t;
            } else {
                hi = t;
            }
        }
    }
    for x in logits.iter_mut() {
        *x = (*x as f64 / t) as f32;
    }
    Adapted {
        temperature: t,
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_the_target_within_tol() {
        let mut z: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
        let h0 = entropy_at(&z, 1.0);
        let cfg = AdaptiveTemperatureConfig::released();
        let a = adapt(&mut z, &cfg);
        assert!(a.temperature < 1.0);
        assert!((entropy_at(&z, 1.0) - 0.85 * h0).abs() < cfg.tol + 1e-6);
    }
}
