//! What a run shows while it trains: a progress bar on a terminal; where stderr is a file or a
//! pipe (`nohup`, CI, a cluster job) the bar draws nothing, so one compact step line every
//! `logging.logging_steps` steps instead (TRL's `logging_steps`).

use std::io::IsTerminal;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::checkpoint::Phase;

/// Progress display of one `train` invocation.
pub struct Progress {
    bar: indicatif::ProgressBar,
    terminal: bool,
    every: u64,
    show_completion: bool,
    total: u64,
    /// Global step and time when this invocation started (resumed runs count from here for ETA).
    start: (u64, Instant),
}

impl Progress {
    /// A display for a run of `total` steps now at `step`; `every` = 0 turns step lines off.
    pub fn new(total: u64, step: u64, every: u64, show_completion: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            let b = indicatif::ProgressBar::new(total).with_position(step);
            b.set_style(
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                    .expect("template")
                    .progress_chars("=> "),
            );
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        Self {
            bar,
            terminal,
            every,
            show_completion,
            total,
            start: (step, Instant::now()),
        }
    }

    /// After global step `step` wrote its metrics `line` (and `sample`, a completion to show).
    pub fn step(&self, step: u64, phase: Phase, line: &Map<String, Value>, sample: Option<&str>) {
        let stats = step_stats(phase, line);
        let due = self.every > 0 && step.is_multiple_of(self.every);
        if self.terminal {
            self.bar.set_position(step);
            self.bar.set_message(stats);
            if due
                && self.show_completion
                && let Some(s) = sample
            {
                self.bar.println(format!("step {step} sample: {}", shorten(s, 160)));
            }
        } else if due {
            let mut text = format!("step {step}/{} {stats} | {}", self.total, self.rate_and_eta(step, line));
            if self.show_completion
                && let Some(s) = sample
            {
                text.push_str(&format!(" | sample: {}", shorten(s, 160)));
            }
            eprintln!("{text}");
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn rate_and_eta(&self, step: u64, line: &Map<String, Value>) -> String {
        let tok_s = line.get("perf/tokens_per_s").and_then(Value::as_f64).unwrap_or(0.0);
        let done = step.saturating_sub(self.start.0);
        let secs = self.start.1.elapsed().as_secs_f64();
        let eta = if done == 0 {
            0.0
        } else {
            secs / done as f64 * self.total.saturating_sub(step) as f64
        };
        format!("{tok_s:.0} tok/s | eta {}", clock(eta))
    }
}

/// The compact statistics of a step: loss for the warm-up; loss, reward, accuracy, entropy and
/// the share of zero-std groups for RL.
pub fn step_stats(phase: Phase, line: &Map<String, Value>) -> String {
    let f = |k: &str| line.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    match phase {
        Phase::Sft => format!("sft loss {:.4}", f("loss")),
        _ => format!(
            "rl loss {:.4} reward {:.3} acc {:.3} H {:.3} zero-std {:.2}",
            f("loss"),
            f("reward/mean"),
            f("accuracy"),
            f("entropy"),
            f("frac_reward_zero_std")
        ),
    }
}

/// `1h02m03s`, `4m05s`, `6s`.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

/// One line of at most `max` characters (newlines shown as `⏎`).
fn shorten(s: &str, max: usize) -> String {
    let flat = s.replace('\n', "⏎");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn step_text_and_clock() {
        let mut m = Map::new();
        for (k, v) in [
            ("loss", 0.5),
            ("reward/mean", 0.75),
            ("accuracy", 0.75),
            ("entropy", 0.123),
            ("frac_reward_zero_std", 0.5),
        ] {
            m.insert(k.into(), json!(v));
        }
        assert_eq!(
            step_stats(Phase::Rl, &m),
            "rl loss 0.5000 reward 0.750 acc 0.750 H 0.123 zero-std 0.50"
        );
        assert_eq!(step_stats(Phase::Sft, &m), "sft loss 0.5000");
        assert_eq!(clock(6.2), "6s");
        assert_eq!(clock(245.0), "4m05s");
        assert_eq!(clock(3723.0), "1h02m03s");
        assert_eq!(shorten("ab\ncd", 3), "ab⏎…");
    }
}
