//! Collapse alarms: after every RL step, the `[alarms]` checks over the step lines of the run so
//! far (entropy slope, clip ratio, zero-std share, truncation, EDIS drift, pass@k − pass@1 gap).
//!
//! The watcher reads only what the step lines hold, so a resumed run rebuilds it exactly from the
//! kept lines of `metrics.jsonl` ([`Alarms::replay`]) and fires the same alarms at the same steps.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::config::{AlarmKind, AlarmsSection};

/// The step-line values the checks read (`None` where a run does not log them).
#[derive(Debug, Clone, Copy)]
struct Obs {
    entropy: Option<f64>,
    clip: Option<f64>,
    zero_std: Option<f64>,
    truncated: Option<f64>,
    edis: Option<f64>,
    pass1: Option<f64>,
    passk: Option<f64>,
}

impl Obs {
    fn of(line: &Map<String, Value>) -> Self {
        let get = |k: &str| line.get(k).and_then(Value::as_f64);
        Self {
            entropy: get("entropy"),
            clip: get("clip_ratio/region"),
            zero_std: get("frac_reward_zero_std"),
            truncated: get("completion/truncated_ratio"),
            edis: get("edis/mean"),
            pass1: get("pass@1"),
            passk: get("pass@k"),
        }
    }
}

/// An alarm firing at a step: its statistic (logged as `alarm/<name>`) and what it means.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub kind: AlarmKind,
    pub value: f64,
    pub message: String,
}

/// The alarms of one run.
pub struct Alarms {
    cfg: AlarmsSection,
    /// One entry per RL step line, in order.
    history: Vec<Obs>,
    /// The alarms that fired at the last step (a warning is printed when one starts firing).
    firing: BTreeSet<AlarmKind>,
}

impl Alarms {
    pub fn new(cfg: AlarmsSection) -> Self {
        Self {
            cfg,
            history: vec![],
            firing: BTreeSet::new(),
        }
    }

    /// Takes in a kept step line of a resumed run (RL lines only; others are ignored).
    pub fn replay(&mut self, line: &Value) {
        if let Some(m) = line
            .as_object()
            .filter(|m| m.get("phase").and_then(Value::as_str) == Some("rl"))
        {
            self.observe(m);
        }
    }

    /// Takes in the line of the RL step just finished; returns the alarms firing now.
    pub fn observe(&mut self, line: &Map<String, Value>) -> Vec<Firing> {
        self.history.push(Obs::of(line));
        let fired: Vec<Firing> = self
            .cfg
            .watch
            .iter()
            .filter_map(|&k| {
                self.check(k).map(|(value, message)| Firing {
                    kind: k,
                    value,
                    message,
                })
            })
            .collect();
        self.firing = fired.iter().map(|f| f.kind).collect();
        fired
    }

    /// The alarms that fired at the last step observed.
    pub fn firing(&self) -> &BTreeSet<AlarmKind> {
        &self.firing
    }

    /// Whether a fired alarm should stop the run.
    pub fn stops<'a>(&self, fired: &'a [Firing]) -> Option<&'a Firing> {
        fired.iter().find(|f| self.cfg.stop_on.contains(&f.kind))
    }

    /// The window's values of one field, or `None` before a full window (or if any is missing).
    fn recent(&self, field: fn(&Obs) -> Option<f64>) -> Option<Vec<f64>> {
        let w = self.cfg.window;
        let n = self.history.len();
        (n >= w).then(|| self.history[n - w..].iter().map(field).collect())?
    }

    /// The start's values of one field: the first window of RL steps.
    fn start(&self, field: fn(&Obs) -> Option<f64>) -> Option<Vec<f64>> {
        let w = self.cfg.window;
        (self.history.len() >= w).then(|| self.history[..w].iter().map(field).collect())?
    }

    /// `Some((statistic, message))` when `kind` fires on the history.
    fn check(&self, kind: AlarmKind) -> Option<(f64, String)> {
        let c = &self.cfg;
        match kind {
            AlarmKind::EntropyCollapse | AlarmKind::EntropyBlowup => self.check_entropy(kind),
            AlarmKind::ClipRatio => above(self.recent(|o| o.clip)?, c.clip_ratio).map(|m| {
                (m, format!("{m:.3} of completion tokens clipped over the last {} steps (> {}): the policy moves too far per update — lower rl.learning_rate or rl.num_iterations", c.window, c.clip_ratio))
            }),
            AlarmKind::ZeroStd => above(self.recent(|o| o.zero_std)?, c.zero_std).map(|m| {
                (m, format!("{m:.3} of groups had equal rewards over the last {} steps (> {}): most prompts give no GRPO signal — the task is saturated or unsolvable for this policy", c.window, c.zero_std))
            }),
            AlarmKind::Truncation => above(self.recent(|o| o.truncated)?, c.truncated).map(|m| {
                (m, format!("{m:.3} of completions truncated over the last {} steps (> {}): raise rl.max_completion_length or mask truncated completions", c.window, c.truncated))
            }),
            AlarmKind::EdisDrift => self.check_edis(),
            AlarmKind::PassGap => self.check_pass_gap(),
        }
    }

    /// Entropy collapse / blow-up: a steep log-linear slope over the window, and the window's
    /// mean far below the highest (collapse) or above the lowest (blow-up) window mean so far.
    fn check_entropy(&self, kind: AlarmKind) -> Option<(f64, String)> {
        let c = &self.cfg;
        let recent = self.recent(|o| o.entropy)?;
        let means = self.window_means(|o| o.entropy)?;
        let logs: Vec<f64> = recent.iter().map(|h| h.max(1e-12).ln()).collect();
        let slope = ls_slope(&logs);
        let now = mean(&recent);
        let collapse = kind == AlarmKind::EntropyCollapse;
        let (fires, reference) = if collapse {
            let peak = means.iter().copied().fold(f64::MIN, f64::max);
            (slope < -c.entropy_slope && now * c.entropy_change <= peak, peak)
        } else {
            let trough = means.iter().copied().fold(f64::MAX, f64::min);
            (slope > c.entropy_slope && now >= c.entropy_change * trough, trough)
        };
        fires.then(|| {
            let (what, which) = if collapse { ("collapsing", "highest") } else { ("blowing up", "lowest") };
            (slope, format!(
                "policy entropy {what}: ln(entropy) changes {slope:+.4} per step over the last {} steps (|slope| > {}), and its mean {now:.4} is {:.3}× the {which} window mean so far ({reference:.4})",
                c.window, c.entropy_slope, now / reference.max(1e-12)
            ))
        })
    }

    /// The mean of every full window of one field so far (`None` if a value is missing).
    fn window_means(&self, field: fn(&Obs) -> Option<f64>) -> Option<Vec<f64>> {
        let values: Option<Vec<f64>> = self.history.iter().map(field).collect();
        Some(values?.windows(self.cfg.window).map(mean).collect())
    }

    /// EDIS drift: the window's mean EDIS risen above the start's by `edis_drift` of its scale.
    fn check_edis(&self) -> Option<(f64, String)> {
        let c = &self.cfg;
        if self.history.len() < 2 * c.window {
            return None;
        }
        let start = mean(&self.start(|o| o.edis)?);
        let now = mean(&self.recent(|o| o.edis)?);
        let drift = (now - start) / start.max(c.edis_floor);
        (drift > c.edis_drift).then(|| {
            (drift, format!(
                "mean EDIS {now:.4} over the last {} steps against {start:.4} at the start: drift {drift:.2} (> {}): rollouts' entropy trajectories grow unstable",
                c.window, c.edis_drift
            ))
        })
    }

    /// Pass gap: k samples per prompt barely solve more than one does, while one sample solves
    /// some but not most problems (the groups' samples became alike).
    fn check_pass_gap(&self) -> Option<(f64, String)> {
        let c = &self.cfg;
        let p1 = mean(&self.recent(|o| o.pass1)?);
        let pk = mean(&self.recent(|o| o.passk)?);
        let [lo, hi] = c.pass_gap_between;
        let gap = pk - p1;
        (lo <= p1 && p1 <= hi && gap < c.pass_gap).then(|| {
            (gap, format!(
                "pass@k {pk:.3} vs pass@1 {p1:.3} over the last {} steps: gap {gap:.3} (< {}): the samples of a group became alike (diversity collapse)",
                c.window, c.pass_gap
            ))
        })
    }
}

/// The mean of `x` when above `threshold`.
fn above(x: Vec<f64>, threshold: f64) -> Option<f64> {
    let m = mean(&x);
    (m > threshold).then_some(m)
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

/// Least-squares slope of `y` against 0, 1, 2, … (0 for fewer than two points).
pub fn ls_slope(y: &[f64]) -> f64 {
    let n = y.len() as f64;
    if y.len() < 2 {
        return 0.0;
    }
    let (xm, ym) = ((n - 1.0) / 2.0, mean(y));
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        let dx = i as f64 - xm;
        sxy += dx * (v - ym);
        sxx += dx * dx;
    }
    sxy / sxx
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(truncated: f64, entropy: f64) -> Map<String, Value> {
        let v = json!({"phase": "rl", "completion/truncated_ratio": truncated, "entropy": entropy});
        v.as_object().unwrap().clone()
    }

    fn alarms(window: usize) -> Alarms {
        Alarms::new(AlarmsSection {
            window,
            ..Default::default()
        })
    }

    #[test]
    fn slope_of_a_line_is_exact() {
        assert!((ls_slope(&[1.0, 3.0, 5.0, 7.0]) - 2.0).abs() < 1e-15);
        assert_eq!(ls_slope(&[4.0]), 0.0);
    }

    #[test]
    fn a_mean_alarm_fires_above_its_threshold_only_after_a_full_window() {
        let mut a = alarms(2);
        // truncated 1.0 at the first step: no full window yet
        assert!(a.observe(&line(1.0, 0.5)).is_empty());
        // window mean (1.0 + 0.0) / 2 = 0.5 > 0.2
        let f = a.observe(&line(0.0, 0.5));
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].kind, f[0].value), (AlarmKind::Truncation, 0.5));
        // (0.0 + 0.4) / 2 = 0.2: not above the threshold
        assert!(a.observe(&line(0.4, 0.5)).is_empty());
    }

    #[test]
    fn entropy_collapse_needs_both_the_slope_and_the_fall_from_the_peak() {
        let mut a = alarms(2);
        for h in [1.0, 1.0, 0.8] {
            assert!(
                a.observe(&line(0.0, h)).is_empty(),
                "steep slope but mean 0.9 of peak 1.0"
            );
        }
        // windows: 1.0, 0.9, 0.45 (≤ 1.0 / 2), slope ln(0.1 / 0.8) < -0.02
        let f = a.observe(&line(0.0, 0.1));
        assert_eq!(
            f.iter().map(|f| f.kind).collect::<Vec<_>>(),
            vec![AlarmKind::EntropyCollapse]
        );
        assert!((f[0].value - (0.1f64 / 0.8).ln()).abs() < 1e-12);
    }

    #[test]
    fn replay_ignores_supervised_lines() {
        let mut a = alarms(2);
        a.replay(&json!({"phase": "sft", "completion/truncated_ratio": 1.0}));
        a.replay(&Value::Object(line(1.0, 0.5)));
        assert_eq!(a.history.len(), 1);
    }
}
