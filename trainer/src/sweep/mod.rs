//! Ablation sweeps: a base run file, override axes (a grid and/or zipped lists) and seeds expand
//! into arms; each arm trains in its own run directory named by a readable label and a hash of its
//! resolved config. Finished arms (with `summary.json`) are skipped on a re-run, interrupted ones
//! resume from their latest checkpoint, failed ones are recorded and the sweep goes on.
//! Aggregation writes `sweep.csv`, `sweep.md` (mean ± 95% confidence interval over seeds) and
//! plots.
//!
//! ```toml
//! base = "../grpo_edis.toml"            # relative to the sweep file
//! output_dir = "checkpoints/sweeps/edis_ablation"
//! seeds = [0, 1, 2]
//! parallel = 1                           # arms trained at once
//! [set]                                  # overrides for every arm
//! "rl.steps" = 60
//! [zip]                                  # lists of equal length that vary together
//! label = ["grpo", "filter"]             # optional: names the zipped variants
//! "entropy.filter.enabled" = [false, true]
//! [grid]                                 # every combination of these lists
//! "rl.learning_rate" = [1e-5, 3e-5]
//! ```

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RunFile, apply_override};

mod report;
mod runner;

pub use report::{aggregate, arm_figures, mean_ci, t95};
pub use runner::{ArmOutcome, ArmState, arm_state, run_arms};

/// The sweep file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Base run file, relative to the sweep file.
    pub base: PathBuf,
    /// Root of the arms' run directories and of the aggregate.
    pub output_dir: PathBuf,
    /// Seeds; every arm runs once per seed.
    #[serde(default = "d_seeds")]
    pub seeds: Vec<u64>,
    /// Arms trained at the same time.
    #[serde(default = "d_one")]
    pub parallel: usize,
    /// Run `entrl eval` on each arm's final model (best-of-N etc. in the aggregate).
    #[serde(default)]
    pub eval_after: bool,
    /// Overrides for every arm.
    #[serde(default)]
    pub set: toml::Table,
    /// Zipped axes: equal-length lists that vary together (`label` names the variants).
    #[serde(default)]
    pub zip: toml::Table,
    /// Grid axes: all combinations.
    #[serde(default)]
    pub grid: toml::Table,
    /// An arm label: `sweep.md` adds every other arm's paired difference from it (same seed),
    /// mean ± 95% Student-t interval over the seeds both finished.
    #[serde(default)]
    pub baseline: Option<String>,
}

fn d_seeds() -> Vec<u64> {
    vec![0]
}
fn d_one() -> usize {
    1
}

/// A variant before seeds: its label parts and its overrides (key, value).
type Variant = (Vec<String>, Vec<(String, toml::Value)>);

/// One training run of the sweep.
#[derive(Debug, Clone)]
pub struct Arm {
    /// Readable name without the seed (`grpo`, `filter-lr=3e-5`): seeds of one arm aggregate.
    pub label: String,
    /// Seed.
    pub seed: u64,
    /// Its run directory.
    pub dir: PathBuf,
    /// The resolved config (output_dir = dir).
    pub run: RunFile,
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// FNV-1a, 64 bit: a hash that does not change across Rust versions.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.=+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl SweepFile {
    /// Reads a sweep file (unknown keys rejected, naming the key).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let de = toml::de::Deserializer::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError(format!("{}: key '{key}': {}", path.display(), e.into_inner()))
        })
    }

    /// Expands into arms (zip variants × grid combinations × seeds), each config resolved and
    /// validated. `sweep_path` locates `base`.
    pub fn arms(&self, sweep_path: &Path) -> Result<Vec<Arm>, ConfigError> {
        let base_path = sweep_path.parent().unwrap_or(Path::new(".")).join(&self.base);
        let base_text =
            std::fs::read_to_string(&base_path).map_err(|e| ConfigError(format!("{}: {e}", base_path.display())))?;
        let origin = sweep_path.display();
        // an empty axis would multiply the arms by zero: a sweep that silently runs nothing
        let list = |section: &str, t: &toml::Table, k: &str| -> Result<Vec<toml::Value>, ConfigError> {
            match t[k].as_array() {
                None => Err(ConfigError(format!(
                    "{origin}: key '{section}.{k}' must be a list of values"
                ))),
                Some(l) if l.is_empty() => Err(ConfigError(format!(
                    "{origin}: key '{section}.{k}' is an empty list: a sweep axis needs at least one value"
                ))),
                Some(l) => Ok(l.clone()),
            }
        };
        if self.seeds.is_empty() {
            return Err(ConfigError(format!(
                "{origin}: key 'seeds' is an empty list: give at least one seed"
            )));
        }
        // zipped variants: (label part, overrides)
        let mut variants: Vec<Variant> = vec![(vec![], vec![])];
        if !self.zip.is_empty() {
            let lists: Vec<(&String, Vec<toml::Value>)> = self
                .zip
                .keys()
                .map(|k| list("zip", &self.zip, k).map(|l| (k, l)))
                .collect::<Result<_, _>>()?;
            let lens: Vec<usize> = lists.iter().map(|(_, l)| l.len()).collect();
            if lens.iter().any(|&l| l != lens[0]) {
                return Err(ConfigError(format!(
                    "{}: [zip] lists differ in length: {lens:?}",
                    sweep_path.display()
                )));
            }
            variants = (0..lens[0])
                .map(|i| {
                    let mut name = vec![];
                    let mut sets = vec![];
                    for (k, l) in &lists {
                        let v = l[i].clone();
                        if *k == "label" {
                            name.insert(0, value_text(&v));
                        } else {
                            if !self.zip.contains_key("label") {
                                name.push(format!("{}={}", k.rsplit('.').next().unwrap_or(k), value_text(&v)));
                            }
                            sets.push(((*k).clone(), v));
                        }
                    }
                    (name, sets)
                })
                .collect();
        }
        for k in self.grid.keys() {
            let values = list("grid", &self.grid, k)?;
            let short = k.rsplit('.').next().unwrap_or(k).to_string();
            variants = variants
                .into_iter()
                .flat_map(|(name, sets)| {
                    let short = short.clone();
                    values.iter().map(move |v| {
                        let mut n = name.clone();
                        n.push(format!("{short}={}", value_text(v)));
                        let mut s = sets.clone();
                        s.push((k.clone(), v.clone()));
                        (n, s)
                    })
                })
                .collect();
        }
        let mut arms = vec![];
        for (name, sets) in &variants {
            let label = if name.is_empty() {
                "base".to_string()
            } else {
                sanitize(&name.join("-"))
            };
            for &seed in &self.seeds {
                let mut doc: toml::Table = base_text
                    .parse()
                    .map_err(|e: toml::de::Error| ConfigError(format!("{}: {e}", base_path.display())))?;
                let mut all: Vec<(String, toml::Value)> =
                    self.set.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                all.extend(sets.iter().cloned());
                all.push(("seed".into(), toml::Value::Integer(seed as i64)));
                for (k, v) in &all {
                    apply_override(&mut doc, &format!("{k}={v}")).map_err(|m| ConfigError(format!("{k}: {m}")))?;
                }
                doc.insert("output_dir".into(), toml::Value::String(String::new()));
                let hash = fnv1a(&toml::to_string(&doc).unwrap_or_default());
                let dir = self
                    .output_dir
                    .join("runs")
                    .join(format!("{label}-s{seed}-{:08x}", hash as u32));
                doc.insert("output_dir".into(), toml::Value::String(dir.display().to_string()));
                let origin = format!("{} (arm {label}, seed {seed})", sweep_path.display());
                let run = RunFile::parse(&toml::to_string(&doc).unwrap_or_default(), &origin, &[])?;
                arms.push(Arm {
                    label: label.clone(),
                    seed,
                    dir,
                    run,
                });
            }
        }
        if let Some(b) = &self.baseline
            && !arms.iter().any(|a| &a.label == b)
        {
            let labels: Vec<&str> = arms.iter().map(|a| a.label.as_str()).collect();
            return Err(ConfigError(format!(
                "{origin}: key 'baseline' names no arm: '{b}' (arms: {})",
                labels.join(", ")
            )));
        }
        Ok(arms)
    }
}

/// Checks that every arm's label names a distinct run (hash collisions would share directories).
pub fn check_distinct(arms: &[Arm]) -> anyhow::Result<()> {
    for (i, a) in arms.iter().enumerate() {
        if arms[..i].iter().any(|b| b.dir == a.dir) {
            bail!("two arms resolve to the same run directory {}", a.dir.display());
        }
    }
    Ok(())
}
