//! Scalar f64 reference of the clipped policy loss, written for clarity, not speed. The tensor
//! version in `policy_loss.rs` is tested against it, and it is tested against TRL's golden values.

use super::{LossType, PolicyLossConfig};

/// Loss value and the statistics TRL logs.
#[derive(Debug, Clone, PartialEq)]
pub struct RefLoss {
    /// The aggregated loss.
    pub loss: f64,
    /// Masked mean of k3 KL (0 when β = 0).
    pub kl: f64,
    /// Share of tokens clipped below (ratio < 1 − ε with A < 0).
    pub clip_low: f64,
    /// Share clipped above (ratio > 1 + ε_high with A > 0).
    pub clip_high: f64,
}

/// `logps, old, reference: [B][T]`, `mask: [B][T]` (0/1), `adv: [B]`. Single batch, no accumulation.
pub fn policy_loss(
    logps: &[Vec<f64>],
    old: &[Vec<f64>],
    reference: Option<&[Vec<f64>]>,
    mask: &[Vec<f64>],
    adv: &[f64],
    c: &PolicyLossConfig,
) -> RefLoss {
    let b = logps.len();
    let (mut total, mut tokens, mut seq_mean_sum) = (0.0f64, 0.0f64, 0.0f64);
    let (mut kl_sum, mut low, mut high) = (0.0, 0.0, 0.0);
    for i in 0..b {
        let (mut s, mut n) = (0.0f64, 0.0f64);
        for t in 0..logps[i].len() {
            if mask[i][t] == 0.0 {
                continue;
            }
            let ratio = (logps[i][t] - old[i][t]).exp();
            let clipped = ratio.clamp(1.0 - c.epsilon, 1.0 + c.epsilon_high);
            let mut l = -(ratio * adv[i]).min(clipped * adv[i]);
            if c.beta != 0.0
                && let Some(r) = reference
            {
                let d = r[i][t] - logps[i][t];
                let kl = d.exp() - d - 1.0;
                kl_sum += kl;
                l += c.beta * kl;
            }
            low += f64::from(u8::from(ratio < 1.0 - c.epsilon && adv[i] < 0.0));
            high += f64::from(u8::from(ratio > 1.0 + c.epsilon_high && adv[i] > 0.0));
            s += l;
            n += 1.0;
        }
        total += s;
        tokens += n;
        seq_mean_sum += s / n.max(1.0);
    }
    let loss = match c.loss_type {
        LossType::Grpo => seq_mean_sum / b as f64,
        LossType::Bnpo | LossType::Dapo => total / tokens.max(1.0),
        LossType::DrGrpo => total / (b * c.max_completion_length) as f64,
    };
    let per = |x: f64| x / tokens.max(1.0);
    RefLoss {
        loss,
        kl: per(kl_sum),
        clip_low: per(low),
        clip_high: per(high),
    }
}
