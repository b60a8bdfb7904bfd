//! Reward programs: a user's program, in any language, run as one long-lived local subprocess that
//! reads a JSON line per batch on stdin and answers a JSON line on stdout.
//!
//! Request:  `{"batch": [{"prompt": …, "completion": …, "answer": …, "data_source": …,
//!             "length": tokens, "extra": {every other column of the dataset row}}, …]}`
//! Answer:   `{"rewards": [r₁, …, r_n]}`, optionally `"correct": [bool, …]` (default: reward > 0.5),
//!           `"components": {"name": [n values]}` (named sub-scores) and `"metrics": {"name": x}`.
//!
//! Every failure is an error naming the program: it cannot start, exits, stays silent past the
//! timeout (it is then killed), or answers something that is not such a line.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a run file names a reward program (`{ kind = "program", command = [...] }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// The program and its arguments, e.g. `["python3", "rewards/my_reward.py"]` (run from the
    /// directory `entrl` runs in; no shell).
    pub command: Vec<String>,
    /// Seconds to wait for each answer before the program is killed and the run stops.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Name in metrics (`reward/<name>`, `reward/<name>/<component>`).
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_timeout() -> f64 {
    60.0
}
fn default_name() -> String {
    "program".into()
}

impl ProgramSpec {
    /// Checks the spec before any work.
    pub fn validate(&self) -> Result<(), String> {
        if self.command.is_empty() || self.command[0].trim().is_empty() {
            return Err("'command' must name a program, e.g. [\"python3\", \"my_reward.py\"]".into());
        }
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0) {
            return Err(format!("'timeout_s' must be > 0 (got {})", self.timeout_s));
        }
        Ok(())
    }

    fn label(&self) -> String {
        format!("reward program `{}`", self.command.join(" "))
    }
}

/// One completion to score, with what a reward program is shown of its problem (serialised as
/// one item of a request's `batch`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ScoreInput<'a> {
    /// The prompt text as the model saw it (rendered only when a program is configured).
    pub prompt: &'a str,
    /// The completion text.
    pub completion: &'a str,
    /// The gold answer.
    #[serde(rename = "answer")]
    pub gold: &'a str,
    /// Completion length in tokens.
    #[serde(rename = "length")]
    pub len: usize,
    /// The problem's `data_source`.
    pub data_source: &'a str,
    /// The dataset row's other columns.
    pub extra: &'a Map<String, Value>,
}

/// A program's answer for one batch.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramAnswer {
    /// One reward per completion.
    pub rewards: Vec<f64>,
    /// Verdicts (default: reward > 0.5).
    #[serde(default)]
    pub correct: Option<Vec<bool>>,
    /// Named sub-scores, one value per completion each.
    #[serde(default)]
    pub components: Map<String, Value>,
    /// Batch-level metrics.
    #[serde(default)]
    pub metrics: Map<String, Value>,
}

/// A reward program failed; the message names it and says how.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ProgramError(pub String);

/// A running program: its stdin, a channel of its stdout lines, and the tail of its stderr.
struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<std::io::Result<String>>,
    stderr_tail: Arc<Mutex<Vec<String>>>,
}

/// The last lines a program wrote to stderr, kept for error messages.
const STDERR_LINES: usize = 20;

impl Running {
    fn spawn(spec: &ProgramSpec) -> Result<Self, ProgramError> {
        let mut child = Command::new(&spec.command[0])
            .args(&spec.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ProgramError(format!("{} could not start: {e}", spec.label())))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let tail = Arc::clone(&stderr_tail);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut t = tail.lock().expect("stderr tail");
                t.push(line);
                if t.len() > STDERR_LINES {
                    t.remove(0);
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            lines,
            stderr_tail,
        })
    }

    /// What the program said on stderr lately, for an error message.
    fn stderr_note(&self) -> String {
        // give the stderr reader a moment to drain what a crashing program wrote last
        std::thread::sleep(Duration::from_millis(50));
        let t = self.stderr_tail.lock().expect("stderr tail");
        if t.is_empty() {
            String::new()
        } else {
            format!("; its stderr ends with:\n  {}", t.join("\n  "))
        }
    }

    /// "exited (status) `what`", then the tail of its stderr.
    fn exit_note(&mut self, what: &str) -> String {
        let status = self
            .child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        format!("exited ({status}) {what}{}", self.stderr_note())
    }
}

/// A reward program, started on first use and kept running between batches.
pub struct Program {
    spec: ProgramSpec,
    running: Option<Running>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").field("spec", &self.spec).finish()
    }
}

impl Program {
    /// A program that starts when first asked.
    pub fn new(spec: ProgramSpec) -> Self {
        Self { spec, running: None }
    }

    /// Scores a batch. After any error the program is stopped (a later call starts it again).
    pub fn score(&mut self, items: &[ScoreInput]) -> Result<ProgramAnswer, ProgramError> {
        if items.is_empty() {
            return Ok(ProgramAnswer::default());
        }
        let out = self.exchange(items);
        if out.is_err()
            && let Some(mut r) = self.running.take()
        {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        out
    }

    fn exchange(&mut self, items: &[ScoreInput]) -> Result<ProgramAnswer, ProgramError> {
        let label = self.spec.label();
        if self.running.is_none() {
            self.running = Some(Running::spawn(&self.spec)?);
        }
        let r = self.running.as_mut().expect("started above");
        let request = serde_json::json!({ "batch": items }).to_string();
        if writeln!(r.stdin, "{request}").and_then(|_| r.stdin.flush()).is_err() {
            return Err(ProgramError(format!(
                "{label} {}",
                r.exit_note("before reading its input")
            )));
        }
        let timeout = Duration::from_secs_f64(self.spec.timeout_s);
        let line = match r.lines.recv_timeout(timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(ProgramError(format!("{label}: reading its output failed: {e}"))),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(ProgramError(format!("{label} {}", r.exit_note("without answering"))));
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(ProgramError(format!(
                    "{label} did not answer within {} s (timeout_s); it was stopped{}",
                    self.spec.timeout_s,
                    r.stderr_note()
                )));
            }
        };
        parse_answer(&line, items.len()).map_err(|m| ProgramError(format!("{label} answered malformed output: {m}")))
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Some(mut r) = self.running.take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

/// Parses and checks one answer line for a batch of `n`.
pub fn parse_answer(line: &str, n: usize) -> Result<ProgramAnswer, String> {
    let shown: String = line.chars().take(200).collect();
    let a: ProgramAnswer = serde_json::from_str(line).map_err(|e| format!("{e} in line {shown:?}"))?;
    if a.rewards.len() != n {
        return Err(format!("{} rewards for {n} completions", a.rewards.len()));
    }
    if let Some(x) = a.rewards.iter().find(|x| !x.is_finite()) {
        return Err(format!("a reward is not finite ({x})"));
    }
    if let Some(c) = &a.correct
        && c.len() != n
    {
        return Err(format!("{} 'correct' values for {n} completions", c.len()));
    }
    for (k, v) in &a.components {
        let ok = v
            .as_array()
            .is_some_and(|xs| xs.len() == n && xs.iter().all(Value::is_number));
        if !ok {
            return Err(format!("component '{k}' is not a list of {n} numbers"));
        }
    }
    if let Some((k, _)) = a.metrics.iter().find(|(_, v)| !v.is_number()) {
        return Err(format!("metric '{k}' is not a number"));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        assert_eq!(parse_answer(r#"{"rewards": [1, 0.5]}"#, 2).unwrap().rewards, [1.0, 0.5]);
        let full = r#"{"rewards": [1], "correct": [true], "components": {"fmt": [0.5]}, "metrics": {"t": 3}}"#;
        assert_eq!(parse_answer(full, 1).unwrap().correct, Some(vec![true]));
        for (bad, want) in [
            ("not json", "expected"),
            (r#"{"rewards": [1]}"#, "1 rewards for 2"),
            (r#"{"reward": [1, 1]}"#, "unknown field"),
            (r#"{"rewards": [1, 1], "components": {"f": [1]}}"#, "component 'f'"),
            (r#"{"rewards": [1, 1], "correct": [true]}"#, "'correct'"),
        ] {
            let e = parse_answer(bad, 2).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
