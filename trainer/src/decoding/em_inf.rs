//! EM-INF: entropy minimisation of each step's logits at inference (METHODS §3).
//!
//! The released loop, per row: an f64 copy `z` of the step's logits `z0` and `p0 = softmax(z0)`;
//! a fresh Adam (β = (0.9, 0.999), ε = 1e-8) on `z`; before each of at most `n_grad_steps` steps
//! the entropy `H = −Σ p·ln(p + 1e-12)` is checked and the loop stops once `H < threshold`;
//! the loss is `H + kl_weight·KL(p0‖p)`. The sampler's temperature/top-k/top-p then act on the
//! result. Deviation (documented): the released code sums H over the batch and stops all rows at
//! once; here every row is its own problem (identical at batch size 1, which is how the fixture
//! is built).

use serde::{Deserialize, Serialize};

/// The `+ε` inside the released entropy's logarithm.
const LOG_EPS: f64 = 1e-12;
const ADAM_BETA1: f64 = 0.9;
const ADAM_BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

/// EM-INF's knobs. `Default` is the released evaluation script's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmInfConfig {
    /// Stop optimising once the entropy (nats) falls below this.
    pub threshold: f64,
    /// Weight of `KL(p0‖p)`, which keeps the logits near the model's.
    pub kl_weight: f64,
    /// Adam learning rate on the logits.
    pub lr: f64,
    /// At most this many Adam steps per token.
    pub n_grad_steps: usize,
}

impl Default for EmInfConfig {
    fn default() -> Self {
        Self::released()
    }
}

impl EmInfConfig {
    /// The released math/code script (`em_inf_eval.sh`): threshold 0.3, kl_weight 0.05, lr 0.1,
    /// 3 steps (run at sampling temperature 0.1, see [`Self::RELEASED_TEMPERATURE`]).
    pub fn released() -> Self {
        Self {
            threshold: 0.3,
            kl_weight: 0.05,
            lr: 0.1,
            n_grad_steps: 3,
        }
    }

    /// The released function's own defaults (`getattr` fallbacks): kl_weight 0.001, 5 steps.
    pub fn function_defaults() -> Self {
        Self {
            threshold: 0.3,
            kl_weight: 0.001,
            lr: 0.1,
            n_grad_steps: 5,
        }
    }

    /// The sampling temperature the released script decodes with.
    pub const RELEASED_TEMPERATURE: f64 = 0.1;

    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.threshold >= 0.0 && self.threshold.is_finite()) {
            return Err(format!("threshold must be >= 0, got {}", self.threshold));
        }
        if !(self.kl_weight >= 0.0 && self.kl_weight.is_finite()) {
            return Err(format!("kl_weight must be >= 0, got {}", self.kl_weight));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("lr must be > 0, got {}", self.lr));
        }
        if self.n_grad_steps == 0 || self.n_grad_steps > 1000 {
            return Err(format!("n_grad_steps must be in 1..=1000, got {}", self.n_grad_steps));
        }
        Ok(())
    }

    /// A lead of the top logit over the second that no run of this config can overturn: each Adam
    /// step moves a logit by at most ~1.01·lr for t ≤ 5 (bias-corrected m̂/√v̂, Cauchy–Schwarz
    /// with β1²/β2 < 1), and the two logits can move towards each other.
    pub fn argmax_safe_margin(&self) -> f64 {
        2.1 * self.n_grad_steps as f64 * self.lr
    }
}

/// Softmax of `z` in f64.
fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
    let e: Vec<f64> = z.iter().map(|&x| (x - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// `−Σ p·ln(p + ε)`: the released entropy.
fn entropy_eps(p: &[f64]) -> f64 {
    -p.iter().map(|&q| q * (q + LOG_EPS).ln()).sum::<f64>()
}

/// Gradient of `H_ε(softmax(z)) + w·KL(p0‖softmax(z))` with respect to `z`.
///
/// `∂H/∂p_i = −(ln(p_i+ε) + p_i/(p_i+ε)) =: g_i`, so `∂H/∂z_j = p_j (g_j − Σ_i p_i g_i)`;
/// `∂KL/∂z_j = p_j Σ_i p0_i − p0_j`.
fn gradient(p: &[f64], p0: &[f64], kl_weight: f64) -> Vec<f64> {
    let g: Vec<f64> = p.iter().map(|&q| -((q + LOG_EPS).ln() + q / (q + LOG_EPS))).collect();
    let pg: f64 = p.iter().zip(&g).map(|(a, b)| a * b).sum();
    let s0: f64 = p0.iter().sum();
    p.iter()
        .zip(&g)
        .zip(p0)
        .map(|((&pj, &gj), &p0j)| pj * (gj - pg) + kl_weight * (pj * s0 - p0j))
        .collect()
}

/// Rewrites `logits` in place by the EM-INF loop; returns the number of Adam steps taken.
pub fn minimise(logits: &mut [f32], cfg: &EmInfConfig) -> usize {
    let mut z: Vec<f64> = logits.iter().map(|&x| x as f64).collect();
    let p0 = softmax(&z);
    let (mut m, mut v) = (vec![0.0; z.len()], vec![0.0; z.len()]);
    let mut steps = 0;
    for t in 1..=cfg.n_grad_steps {
        let p = softmax(&z);
        if entropy_eps(&p) < cfg.threshold {
            break;
        }
        let grad = gradient(&p, &p0, cfg.kl_weight);
        let (bc1, bc2) = (1.0 - ADAM_BETA1.powi(t as i32), 1.0 - ADAM_BETA2.powi(t as i32));
        for j in 0..z.len() {
            m[j] = ADAM_BETA1 * m[j] + (1.0 - ADAM_BETA1) * grad[j];
            v[j] = ADAM_BETA2 * v[j] + (1.0 - ADAM_BETA2) * grad[j] * grad[j];
            z[j] -= cfg.lr / bc1 * m[j] / (v[j].sqrt() / bc2.sqrt() + ADAM_EPS);
        }
        steps = t;
    }
    if steps > 0 {
        for (o, x) in logits.iter_mut().zip(&z) {
            *o = *x as f32;
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed-form gradient against central finite differences of the loss.
    #[test]
    fn gradient_matches_finite_differences() {
        let z = [0.3, -1.2, 2.0, 0.0, 0.7];
        let p0 = softmax(&[1.0, 0.0, 0.5, -0.5, 0.2]);
        let loss = |z: &[f64]| {
            let p = softmax(z);
            let kl: f64 = p0.iter().zip(&p).map(|(a, b)| a * (a.ln() - b.ln())).sum();
            entropy_eps(&p) + 0.3 * kl
        };
        let g = gradient(&softmax(&z), &p0, 0.3);
        for j in 0..z.len() {
            let (mut a, mut b) = (z, z);
            a[j] += 1e-6;
            b[j] -= 1e-6;
            let fd = (loss(&a) - loss(&b)) / 2e-6;
            assert!((fd - g[j]).abs() < 1e-6, "dz{j}: {fd} vs {}", g[j]);
        }
    }

    #[test]
    fn below_threshold_is_identity() {
        let mut z = [10.0f32, 0.0, 0.0];
        let before = z;
        assert_eq!(minimise(&mut z, &EmInfConfig::released()), 0);
        assert_eq!(z, before);
    }
}
