//! The run's JSON-lines logs (`metrics.jsonl`, `samples.jsonl`): appending, truncating on
//! resume, reading back (plots, sweeps, tests).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Appends JSON lines that carry a `step` (`metrics.jsonl`, `samples.jsonl`); on resume, drops
/// lines past the checkpoint so the file continues exactly.
pub struct MetricsLog {
    path: PathBuf,
}

/// Fields that measure wall-clock time: they legitimately differ between identical runs.
pub const TIMING_KEYS: [&str; 3] = ["time/step_s", "perf/tokens_per_s", "time/rollout_s"];

impl MetricsLog {
    /// Opens `run_dir/metrics.jsonl`, keeping only lines with `step <= keep_through`.
    pub fn open(run_dir: &Path, keep_through: u64) -> anyhow::Result<Self> {
        Self::open_file(run_dir, "metrics.jsonl", keep_through)
    }

    /// Opens `run_dir/name`, keeping only lines with `step <= keep_through`.
    pub fn open_file(run_dir: &Path, name: &str, keep_through: u64) -> anyhow::Result<Self> {
        let path = run_dir.join(name);
        if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<Value>(l)
                        .ok()
                        .and_then(|v| v["step"].as_u64())
                        .is_some_and(|s| s <= keep_through)
                })
                .collect();
            let mut body = kept.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            std::fs::write(&path, body)?;
        }
        Ok(Self { path })
    }

    /// Starts an empty file (a fresh run).
    pub fn open_fresh(&self) -> anyhow::Result<()> {
        std::fs::write(&self.path, "")?;
        Ok(())
    }

    /// Appends one line.
    pub fn write(&self, m: &Map<String, Value>) -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        writeln!(f, "{}", Value::Object(m.clone()))?;
        Ok(())
    }
}

/// Every line of `run_dir/metrics.jsonl`, parsed; the error names the file and line.
pub fn read_lines(run_dir: &Path) -> anyhow::Result<Vec<Value>> {
    let path = run_dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}
