//! Trajectory artifacts: every completion of a training step or an evaluation with its per-token
//! entropy trajectory, log-probs, self-certainty, tokens, reward, verdict and signals, so any
//! figure can be recomputed later without rerunning the model.
//!
//! Format: one safetensors file per step/evaluation (readable from Python with
//! `safetensors.numpy.load_file`). Ragged per-token arrays are concatenated and cut by `offsets`:
//!
//! | tensor | dtype | shape | meaning |
//! |---|---|---|---|
//! | `offsets` | I64 | [n+1] | completion i's tokens are `offsets[i]..offsets[i+1]` |
//! | `tokens` | U32 | [Σ T] | generated ids |
//! | `entropies`, `logprobs`, `self_certainty`, `confidence` | F32 | [Σ T] | per-token values (raw T=1 distribution; `confidence` is DeepConf's C_t) |
//! | `top_ids`, `top_logprobs` | U32, F32 | [Σ T, k] | the k most likely tokens per position and their log-probs (k = metadata `top_k`, 0 when not recorded) |
//! | `prompt_index`, `sample_index` | I64 | [n] | which problem (data index) and which sample |
//! | `reward`, `advantage`, `weight` | F64 | [n] | total reward; advantage used (0 if unused); EDIS weight (1 if none) |
//! | `correct`, `kept`, `truncated` | U8 | [n] | verdict; used in the update; hit the length limit |
//! | `signals` | F64 | [n, 9] | `edis, mean_entropy, self_certainty, nll, max_entropy, conf_mean, conf_lowest_group, conf_bottom_groups, conf_tail` |
//!
//! Metadata: `format = entrl-trajectories/1`, `kind` (train/eval), `step`, `label`, the EDIS and
//! DeepConf parameters used (`edis`, `deepconf`), `top_k`, and `signals` (the column names).
//! Files written before the top-k columns existed read with empty top-k and confidence.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use entrl_rewards::{Signal, SignalParams, Signals};
use safetensors::{Dtype, SafeTensors};
use serde_json::{Map, Value, json};

pub use crate::record::Record;

/// A file's header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// `train` or `eval`.
    pub kind: String,
    /// Global step.
    pub step: u64,
    /// Evaluation label (`initial`, `final`, ...) or empty.
    pub label: String,
    /// Parameters the signals were computed with.
    pub signals: SignalParams,
}

/// File name of a step's artifact inside `RUN_DIR/trajectories/`.
pub fn file_name(kind: &str, step: u64, label: &str) -> String {
    if label.is_empty() {
        format!("{kind}-step-{step:06}.safetensors")
    } else {
        format!("{kind}-step-{step:06}-{label}.safetensors")
    }
}

fn bytes<T: Copy, const N: usize>(v: impl Iterator<Item = T>, f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.flat_map(f).collect()
}

/// Writes `records` to `dir/file_name(..)` atomically; returns the path.
pub fn write(dir: &Path, h: &Header, records: &[Record]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let n = records.len();
    let mut offsets = vec![0i64];
    for r in records {
        offsets.push(offsets.last().unwrap() + r.tokens.len() as i64);
    }
    let total = *offsets.last().unwrap() as usize;
    let k = top_k(records);
    let flat_f32 =
        |f: fn(&Record) -> &Vec<f32>| bytes(records.iter().flat_map(|r| f(r).iter().copied()), f32::to_le_bytes);
    let col_f64 = |f: fn(&Record) -> f64| bytes(records.iter().map(f), f64::to_le_bytes);
    let col_u8 = |f: fn(&Record) -> bool| records.iter().map(|r| u8::from(f(r))).collect::<Vec<u8>>();
    let col_i64 = |f: fn(&Record) -> u64| bytes(records.iter().map(|r| f(r) as i64), i64::to_le_bytes);
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        (
            "offsets",
            Dtype::I64,
            vec![n + 1],
            bytes(offsets.iter().copied(), i64::to_le_bytes),
        ),
        (
            "tokens",
            Dtype::U32,
            vec![total],
            bytes(records.iter().flat_map(|r| r.tokens.iter().copied()), u32::to_le_bytes),
        ),
        ("entropies", Dtype::F32, vec![total], flat_f32(|r| &r.entropies)),
        ("logprobs", Dtype::F32, vec![total], flat_f32(|r| &r.logprobs)),
        (
            "self_certainty",
            Dtype::F32,
            vec![total],
            flat_f32(|r| &r.self_certainty),
        ),
        ("confidence", Dtype::F32, vec![total], confidence_column(records, total)),
        (
            "top_ids",
            Dtype::U32,
            vec![total, k],
            top_column(records, k, |e| e.0.to_le_bytes()),
        ),
        (
            "top_logprobs",
            Dtype::F32,
            vec![total, k],
            top_column(records, k, |e| e.1.to_le_bytes()),
        ),
        ("prompt_index", Dtype::I64, vec![n], col_i64(|r| r.prompt_index)),
        ("sample_index", Dtype::I64, vec![n], col_i64(|r| r.sample_index)),
        ("reward", Dtype::F64, vec![n], col_f64(|r| r.reward)),
        ("advantage", Dtype::F64, vec![n], col_f64(|r| r.advantage)),
        ("weight", Dtype::F64, vec![n], col_f64(|r| r.weight)),
        ("correct", Dtype::U8, vec![n], col_u8(|r| r.correct)),
        ("kept", Dtype::U8, vec![n], col_u8(|r| r.kept)),
        ("truncated", Dtype::U8, vec![n], col_u8(|r| r.truncated)),
        (
            "signals",
            Dtype::F64,
            vec![n, Signal::ALL.len()],
            bytes(records.iter().flat_map(|r| r.signals.0), f64::to_le_bytes),
        ),
    ];
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dt, shape, b)| {
            let view = safetensors::tensor::TensorView::new(*dt, shape.clone(), b).expect("consistent view");
            (name.to_string(), view)
        })
        .collect();
    let signals: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
    let meta = HashMap::from([
        ("format".to_string(), "entrl-trajectories/1".to_string()),
        ("kind".to_string(), h.kind.clone()),
        ("step".to_string(), h.step.to_string()),
        ("label".to_string(), h.label.clone()),
        ("edis".to_string(), serde_json::to_string(&h.signals.edis)?),
        ("deepconf".to_string(), serde_json::to_string(&h.signals.deepconf)?),
        ("top_k".to_string(), k.to_string()),
        ("signals".to_string(), signals.join(",")),
    ]);
    let path = dir.join(file_name(&h.kind, h.step, &h.label));
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::tensor::serialize_to_file(views, Some(meta), &tmp)
        .map_err(|e| anyhow::anyhow!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The top-k width shared by every recorded position (the smallest, so the table is rectangular;
/// 0 when any position has none).
fn top_k(records: &[Record]) -> usize {
    records
        .iter()
        .flat_map(|r| r.top_logprobs.iter().map(Vec::len))
        .min()
        .unwrap_or(0)
}

/// `[Σ T, k]` bytes of the first k (id, log-prob) pairs of every position.
fn top_column<const N: usize>(records: &[Record], k: usize, f: fn(&(u32, f32)) -> [u8; N]) -> Vec<u8> {
    if k == 0 {
        return vec![];
    }
    let pairs = records
        .iter()
        .flat_map(|r| r.top_logprobs.iter().flat_map(|t| t[..k].iter()));
    pairs.flat_map(f).collect()
}

/// `[Σ T]` bytes of the token confidences (0 where a record has none).
fn confidence_column(records: &[Record], total: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total * 4);
    for r in records {
        for t in 0..r.tokens.len() {
            out.extend(r.confidence.get(t).copied().unwrap_or(0.0).to_le_bytes());
        }
    }
    out
}

fn column<T, const N: usize>(st: &SafeTensors, name: &str, dt: Dtype, f: fn([u8; N]) -> T) -> anyhow::Result<Vec<T>> {
    let t = st.tensor(name).map_err(|e| anyhow::anyhow!("tensor '{name}': {e}"))?;
    if t.dtype() != dt {
        bail!("tensor '{name}' has dtype {:?}, expected {dt:?}", t.dtype());
    }
    Ok(t.data()
        .chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunk of N")))
        .collect())
}

/// Reads an artifact written by [`write`].
pub fn read(path: &Path) -> anyhow::Result<(Header, Vec<Record>)> {
    let ctx = || path.display().to_string();
    let buf = std::fs::read(path).with_context(ctx)?;
    let (_, meta) = SafeTensors::read_metadata(&buf).map_err(|e| anyhow::anyhow!("{}: {e}", ctx()))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some("entrl-trajectories/1") {
        bail!("{}: not an entrl trajectory file (metadata 'format')", ctx());
    }
    let get = |k: &str| meta.get(k).cloned().unwrap_or_default();
    let header = Header {
        kind: get("kind"),
        step: get("step")
            .parse()
            .with_context(|| format!("{}: metadata 'step'", ctx()))?,
        label: get("label"),
        signals: SignalParams {
            edis: serde_json::from_str(&get("edis")).with_context(|| format!("{}: metadata 'edis'", ctx()))?,
            deepconf: match meta.get("deepconf") {
                Some(d) => serde_json::from_str(d).with_context(|| format!("{}: metadata 'deepconf'", ctx()))?,
                None => Default::default(),
            },
        },
    };
    let k: usize = meta
        .get("top_k")
        .map_or(Ok(0), |v| v.parse())
        .with_context(|| format!("{}: metadata 'top_k'", ctx()))?;
    let st = SafeTensors::deserialize(&buf).map_err(|e| anyhow::anyhow!("{}: {e}", ctx()))?;
    let rd = || -> anyhow::Result<Vec<Record>> {
        let offsets = column(&st, "offsets", Dtype::I64, i64::from_le_bytes)?;
        let tokens = column(&st, "tokens", Dtype::U32, u32::from_le_bytes)?;
        let ent = column(&st, "entropies", Dtype::F32, f32::from_le_bytes)?;
        let lp = column(&st, "logprobs", Dtype::F32, f32::from_le_bytes)?;
        let sc = column(&st, "self_certainty", Dtype::F32, f32::from_le_bytes)?;
        let pi = column(&st, "prompt_index", Dtype::I64, i64::from_le_bytes)?;
        let si = column(&st, "sample_index", Dtype::I64, i64::from_le_bytes)?;
        let reward = column(&st, "reward", Dtype::F64, f64::from_le_bytes)?;
        let adv = column(&st, "advantage", Dtype::F64, f64::from_le_bytes)?;
        let weight = column(&st, "weight", Dtype::F64, f64::from_le_bytes)?;
        let correct = column(&st, "correct", Dtype::U8, u8::from_le_bytes)?;
        let kept = column(&st, "kept", Dtype::U8, u8::from_le_bytes)?;
        let trunc = column(&st, "truncated", Dtype::U8, u8::from_le_bytes)?;
        let sig = column(&st, "signals", Dtype::F64, f64::from_le_bytes)?;
        let (conf, top) = if k > 0 {
            let ids = column(&st, "top_ids", Dtype::U32, u32::from_le_bytes)?;
            let lps = column(&st, "top_logprobs", Dtype::F32, f32::from_le_bytes)?;
            let conf = column(&st, "confidence", Dtype::F32, f32::from_le_bytes)?;
            (conf, ids.into_iter().zip(lps).collect::<Vec<_>>())
        } else {
            (vec![], vec![])
        };
        let n = offsets.len().saturating_sub(1);
        let ns = Signal::ALL.len();
        if [pi.len(), si.len(), reward.len(), correct.len(), kept.len()] != [n; 5] || sig.len() != n * ns {
            bail!("inconsistent column lengths");
        }
        if k > 0 && (conf.len() != ent.len() || top.len() != ent.len() * k) {
            bail!("top-k columns do not match the per-token arrays");
        }
        if offsets.windows(2).any(|w| w[1] < w[0]) || offsets.last().copied().unwrap_or(0) as usize != ent.len() {
            bail!("offsets do not cover the per-token arrays");
        }
        Ok((0..n)
            .map(|i| {
                let r = offsets[i] as usize..offsets[i + 1] as usize;
                Record {
                    prompt_index: pi[i] as u64,
                    sample_index: si[i] as u64,
                    tokens: tokens[r.clone()].to_vec(),
                    entropies: ent[r.clone()].to_vec(),
                    logprobs: lp[r.clone()].to_vec(),
                    self_certainty: sc[r.clone()].to_vec(),
                    confidence: if k > 0 { conf[r.clone()].to_vec() } else { vec![] },
                    top_logprobs: if k > 0 {
                        r.map(|t| top[t * k..(t + 1) * k].to_vec()).collect()
                    } else {
                        vec![]
                    },
                    reward: reward[i],
                    correct: correct[i] != 0,
                    kept: kept[i] != 0,
                    truncated: trunc[i] != 0,
                    advantage: adv[i],
                    weight: weight[i],
                    signals: Signals(sig[i * ns..(i + 1) * ns].try_into().expect("all signals")),
                }
            })
            .collect())
    };
    let records = rd().with_context(ctx)?;
    Ok((header, records))
}

/// Signal metrics over a set of records: EDIS and mean entropy averaged over correct and over
/// incorrect completions, and every signal's AUROC for correctness (oriented so that > 0.5 means
/// the signal ranks correct completions as more confident). Keys are `{prefix}edis/mean_correct`,
/// `{prefix}auroc/edis`, ...; means and AUROCs that are undefined (an empty class) are omitted.
pub fn signal_metrics(records: &[Record], prefix: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let labels: Vec<bool> = records.iter().map(|r| r.correct).collect();
    for s in [Signal::Edis, Signal::MeanEntropy] {
        for (class, want) in [("correct", true), ("incorrect", false)] {
            let v: Vec<f64> = records
                .iter()
                .filter(|r| r.correct == want)
                .map(|r| r.signals.get(s))
                .collect();
            if !v.is_empty() {
                m.insert(
                    format!("{prefix}{}/mean_{class}", s.name()),
                    json!(v.iter().sum::<f64>() / v.len() as f64),
                );
            }
        }
    }
    for s in Signal::ALL {
        let conf: Vec<f64> = records.iter().map(|r| s.confidence(r.signals.get(s))).collect();
        if let Some(a) = entrl_rewards::stats::auroc(&conf, &labels) {
            m.insert(format!("{prefix}auroc/{}", s.name()), json!(a));
        }
    }
    m
}
