//! Per-completion signals computed from its entropy trajectory and token log-probs (METHODS §0, §1).
//!
//! Every function takes the per-token values a rollout records (`H_t` in nats of the raw T=1
//! distribution, the sampled token's log-prob, the per-token self-certainty) and works in f64.
//! Empty trajectories give 0 for every signal; EDIS is 0 for `T < 2` and has no bursts for `T ≤ w`.

use serde::{Deserialize, Serialize};

use crate::confidence::{DeepConfParams, TraceConfidence};

/// EDIS hyperparameters. The paper gives the thresholds (App. E, Qwen2.5-Math-1.5B) but not `w`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdisParams {
    /// Burst window `w`: a burst at t is `H_{t+w} − H_t > τ_b`. ASSUMPTION: 8 (METHODS §1(b)).
    pub window: usize,
    /// Burst threshold `τ_b` (nats).
    pub tau_burst: f64,
    /// Rebound threshold `τ_r` (nats) above the running minimum of earlier positions.
    pub tau_rebound: f64,
}

impl Default for EdisParams {
    fn default() -> Self {
        Self {
            window: 8,
            tau_burst: 1.36,
            tau_rebound: 1.33,
        }
    }
}

/// `S_burst = Σ_{t=1}^{T−w} 1[H_{t+w} − H_t > τ_b]` (0 when `T ≤ w` or `w = 0`).
pub fn burst_count(h: &[f32], window: usize, tau: f64) -> usize {
    if window == 0 || h.len() <= window {
        return 0;
    }
    (0..h.len() - window)
        .filter(|&t| h[t + window] as f64 - h[t] as f64 > tau)
        .count()
}

/// `S_reb = Σ_{t=2}^{T} 1[H_t − min_{s<t} H_s > τ_r]`: every position above the bar counts.
pub fn rebound_count(h: &[f32], tau: f64) -> usize {
    let mut count = 0;
    let mut min = f64::INFINITY;
    for (t, &x) in h.iter().enumerate() {
        let x = x as f64;
        if t > 0 && x - min > tau {
            count += 1;
        }
        min = min.min(x);
    }
    count
}

/// Mean of the values (0 when empty).
pub fn mean(h: &[f32]) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.iter().map(|&x| x as f64).sum::<f64>() / h.len() as f64
}

/// Population variance `(1/T) Σ (H_t − mean)²` (0 when empty).
pub fn population_variance(h: &[f32]) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let m = mean(h);
    h.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / h.len() as f64
}

/// `EDIS = (S_burst + S_reb)/2 · (1 + Var(H))`; lower = more stable. `≥ 0`, and 0 for a constant
/// trajectory (no increase ever exceeds a positive threshold).
pub fn edis(h: &[f32], p: &EdisParams) -> f64 {
    if h.len() < 2 {
        return 0.0;
    }
    let s = (burst_count(h, p.window, p.tau_burst) + rebound_count(h, p.tau_rebound)) as f64 / 2.0;
    s * (1.0 + population_variance(h))
}

/// Largest value (0 when empty).
pub fn max_value(h: &[f32]) -> f64 {
    h.iter().map(|&x| x as f64).fold(0.0f64, f64::max)
}

/// Everything the signals are computed with.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalParams {
    /// EDIS window and thresholds.
    pub edis: EdisParams,
    /// DeepConf window, tail and bottom share.
    pub deepconf: DeepConfParams,
}

/// A completion's recorded per-token values (all of length T; `confidence` is empty when no
/// top-k log-probs were recorded).
#[derive(Debug, Clone, Copy)]
pub struct Trajectory<'a> {
    /// `H_t` (nats).
    pub entropies: &'a [f32],
    /// `ln π(y_t | y_<t)` of the sampled tokens.
    pub logprobs: &'a [f32],
    /// Per-token self-certainty `KL(U‖p_t) = −ln V − (1/V) Σ_v ln p_t[v]`.
    pub self_certainty: &'a [f32],
    /// Per-token DeepConf confidence `C_t = −mean of the top-k log-probs`.
    pub confidence: &'a [f32],
}

/// A per-completion confidence signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Entropy Dynamics Instability Score (lower = more likely correct).
    Edis,
    /// Mean token entropy (lower = more confident).
    MeanEntropy,
    /// Self-certainty, Kang et al. 2025 (higher = more confident).
    SelfCertainty,
    /// Negative mean log-prob of the sampled tokens (lower = more confident).
    Nll,
    /// Largest token entropy (lower = more confident).
    MaxEntropy,
    /// DeepConf mean token confidence (higher = more confident).
    ConfMean,
    /// DeepConf lowest group (sliding-window) confidence (higher = more confident).
    ConfLowestGroup,
    /// DeepConf mean of the bottom 10% group confidences (higher = more confident).
    ConfBottomGroups,
    /// DeepConf tail confidence (higher = more confident).
    ConfTail,
}

impl Signal {
    /// Every signal, in report (= declaration) order.
    pub const ALL: [Signal; 9] = [
        Signal::Edis,
        Signal::MeanEntropy,
        Signal::SelfCertainty,
        Signal::Nll,
        Signal::MaxEntropy,
        Signal::ConfMean,
        Signal::ConfLowestGroup,
        Signal::ConfBottomGroups,
        Signal::ConfTail,
    ];

    /// Name in metrics and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Edis => "edis",
            Self::MeanEntropy => "mean_entropy",
            Self::SelfCertainty => "self_certainty",
            Self::Nll => "nll",
            Self::MaxEntropy => "max_entropy",
            Self::ConfMean => "conf_mean",
            Self::ConfLowestGroup => "conf_lowest_group",
            Self::ConfBottomGroups => "conf_bottom_groups",
            Self::ConfTail => "conf_tail",
        }
    }

    /// Whether a larger value means "more likely correct".
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            Self::SelfCertainty | Self::ConfMean | Self::ConfLowestGroup | Self::ConfBottomGroups | Self::ConfTail
        )
    }

    /// The signal's value on one trajectory.
    pub fn compute(self, t: &Trajectory, p: &SignalParams) -> f64 {
        let conf = || TraceConfidence::of(t.confidence, &p.deepconf);
        match self {
            Self::Edis => edis(t.entropies, &p.edis),
            Self::MeanEntropy => mean(t.entropies),
            Self::SelfCertainty => mean(t.self_certainty),
            Self::Nll => -mean(t.logprobs),
            Self::MaxEntropy => max_value(t.entropies),
            Self::ConfMean => conf().mean,
            Self::ConfLowestGroup => conf().lowest_group,
            Self::ConfBottomGroups => conf().bottom_groups,
            Self::ConfTail => conf().tail,
        }
    }

    /// `value` oriented so that larger = more likely correct (for ranking and AUROC).
    pub fn confidence(self, value: f64) -> f64 {
        if self.higher_is_better() { value } else { -value }
    }
}

/// All signals of one completion, in [`Signal::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Signals(pub [f64; 9]);

impl Signals {
    /// Computes every signal of `t`.
    pub fn of(t: &Trajectory, p: &SignalParams) -> Self {
        Self(Signal::ALL.map(|s| s.compute(t, p)))
    }

    /// The value of one signal.
    pub fn get(&self, s: Signal) -> f64 {
        self.0[s as usize] // ALL lists the variants in declaration order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_edis() {
        // w = 2: pairs (0,2): 1.5−0.1 = 1.4 > 1.36 burst; (1,3): 0.2−0.2 no; (2,4): 0.1−1.5 no.
        // running minima before t=1..4: 0.1, 0.1, 0.1, 0.1 → 1.5−0.1 = 1.4 > 1.33 rebound at t=2 only.
        let h = [0.1f32, 0.2, 1.5, 0.2, 0.1];
        let p = EdisParams {
            window: 2,
            ..Default::default()
        };
        assert_eq!(burst_count(&h, 2, p.tau_burst), 1);
        assert_eq!(rebound_count(&h, p.tau_rebound), 1);
        let var = population_variance(&h);
        assert!((edis(&h, &p) - 1.0 * (1.0 + var)).abs() < 1e-12);
    }

    #[test]
    fn all_lists_signals_in_declaration_order() {
        // `Signals::get` indexes by discriminant
        for (i, s) in Signal::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }

    #[test]
    fn edge_cases() {
        let p = EdisParams::default();
        assert_eq!(edis(&[], &p), 0.0);
        assert_eq!(edis(&[3.0], &p), 0.0);
        // T ≤ w: no bursts, rebounds still count
        let h = [0.0f32, 2.0, 2.0];
        assert_eq!(burst_count(&h, 8, p.tau_burst), 0);
        assert_eq!(rebound_count(&h, p.tau_rebound), 2);
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(max_value(&[]), 0.0);
        let t = Trajectory {
            entropies: &[],
            logprobs: &[],
            self_certainty: &[],
            confidence: &[],
        };
        assert_eq!(Signals::of(&t, &SignalParams::default()).0, [0.0; 9]);
    }
}
