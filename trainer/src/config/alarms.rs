//! `[alarms]`: per-step collapse checks of an RL run ([`crate::train::alarms`]). Every alarm is
//! watched by default and only warns; `stop_on` names the ones that stop the run (leaving a
//! resumable checkpoint).

use serde::{Deserialize, Serialize};

/// One check. Names in `watch` / `stop_on` are these, snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// The policy entropy falls steeply and has fallen far below its highest window so far.
    EntropyCollapse,
    /// The policy entropy rises steeply and has risen far above its lowest window so far.
    EntropyBlowup,
    /// Too many completion tokens sit outside the PPO clip region.
    ClipRatio,
    /// Too many groups have equal rewards (no GRPO signal).
    ZeroStd,
    /// Too many completions end at `rl.max_completion_length`.
    Truncation,
    /// The rollouts' mean EDIS has risen far above its level at the start of RL.
    EdisDrift,
    /// Sampling k times no longer finds answers one sample misses: the groups became uniform.
    PassGap,
}

impl AlarmKind {
    /// Every alarm, in the order they are checked and reported.
    pub const ALL: [AlarmKind; 7] = [
        AlarmKind::EntropyCollapse,
        AlarmKind::EntropyBlowup,
        AlarmKind::ClipRatio,
        AlarmKind::ZeroStd,
        AlarmKind::Truncation,
        AlarmKind::EdisDrift,
        AlarmKind::PassGap,
    ];

    /// The name in configs and in the `alarm/<name>` metric.
    pub fn name(self) -> &'static str {
        match self {
            AlarmKind::EntropyCollapse => "entropy_collapse",
            AlarmKind::EntropyBlowup => "entropy_blowup",
            AlarmKind::ClipRatio => "clip_ratio",
            AlarmKind::ZeroStd => "zero_std",
            AlarmKind::Truncation => "truncation",
            AlarmKind::EdisDrift => "edis_drift",
            AlarmKind::PassGap => "pass_gap",
        }
    }
}

/// The `[alarms]` section. Statistics are over the last `window` RL steps; "the start" is the
/// first `window` RL steps. Defaults were chosen so that the quickstart's healthy run fires none
/// (docs/LOG.md), and each is a config value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmsSection {
    /// The alarms checked (all by default; `[]` turns the checks off).
    pub watch: Vec<AlarmKind>,
    /// The alarms that stop the run after the step that fired them, with a checkpoint to resume
    /// from (none by default: alarms warn and are logged as `alarm/<name>`).
    pub stop_on: Vec<AlarmKind>,
    /// RL steps per window.
    pub window: usize,
    /// Entropy alarms: |least-squares slope of ln(entropy) per step| over the window above this…
    pub entropy_slope: f64,
    /// …and the window's mean entropy at least this factor below the highest window mean so far
    /// (collapse) or above the lowest (blow-up).
    pub entropy_change: f64,
    /// `clip_ratio/region` window mean above this (GRPO with one iteration logs ~0; PPO practice
    /// reads a clipped share above ~0.1 as too large a step).
    pub clip_ratio: f64,
    /// `frac_reward_zero_std` window mean above this.
    pub zero_std: f64,
    /// `completion/truncated_ratio` window mean above this.
    pub truncated: f64,
    /// EDIS drift: (window mean − start mean) / max(start mean, `edis_floor`) above this.
    pub edis_drift: f64,
    /// The scale below which EDIS means count as zero (EDIS is ~0 on confident models).
    pub edis_floor: f64,
    /// Pass gap: pass@k − pass@1 (window means) below this…
    pub pass_gap: f64,
    /// …while the window's pass@1 lies in this range: outside it a small gap means an unsolved
    /// (see `zero_std`) or a solved task, not samples that became alike.
    pub pass_gap_between: [f64; 2],
}

impl Default for AlarmsSection {
    fn default() -> Self {
        Self {
            watch: AlarmKind::ALL.to_vec(),
            stop_on: vec![],
            window: 20,
            entropy_slope: 0.02,
            entropy_change: 2.0,
            clip_ratio: 0.1,
            zero_std: 0.9,
            truncated: 0.2,
            edis_drift: 1.0,
            edis_floor: 0.05,
            pass_gap: 0.05,
            pass_gap_between: [0.05, 0.9],
        }
    }
}

impl AlarmsSection {
    /// Range checks, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.window < 2 {
            return Err(format!(
                "key 'alarms.window' must be >= 2 (a slope needs two steps), got {}",
                self.window
            ));
        }
        for (key, v, lo, hi) in [
            ("entropy_slope", self.entropy_slope, 0.0, 10.0),
            ("entropy_change", self.entropy_change, 1.0, 1e6),
            ("clip_ratio", self.clip_ratio, 0.0, 1.0),
            ("zero_std", self.zero_std, 0.0, 1.0),
            ("truncated", self.truncated, 0.0, 1.0),
            ("edis_drift", self.edis_drift, 0.0, 1e6),
            ("edis_floor", self.edis_floor, 1e-12, 1e6),
            ("pass_gap", self.pass_gap, 0.0, 1.0),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(format!("key 'alarms.{key}' must be in [{lo}, {hi}], got {v}"));
            }
        }
        let [lo, hi] = self.pass_gap_between;
        if !(0.0 <= lo && lo <= hi && hi <= 1.0) {
            return Err(format!(
                "key 'alarms.pass_gap_between' must be [lo, hi] with 0 <= lo <= hi <= 1, got [{lo}, {hi}]"
            ));
        }
        if let Some(k) = self.stop_on.iter().find(|k| !self.watch.contains(k)) {
            return Err(format!(
                "key 'alarms.stop_on' names '{}', which 'alarms.watch' does not watch",
                k.name()
            ));
        }
        Ok(())
    }
}
