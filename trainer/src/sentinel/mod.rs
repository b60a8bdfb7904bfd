//! `entrl sentinel`: Entropy Sentinel over a run file's `[sentinel]` domains. Each domain's
//! problems are answered once by the model (T = `sentinel.temperature`, top-k log-probs recorded),
//! judged by the run's verifier and turned into feature columns ([`collect`]); a Sentinel is fitted
//! on the training domains' 80% parts and saved as a versioned JSON file ([`SentinelFile`]);
//! estimates, the ATC and length-only baselines and their errors go to a report ([`report`]).

pub mod intervals;
pub mod monitor;
pub mod report;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use burn::tensor::backend::Backend;
use entrl_rewards::sentinel::{Atc, FEATURE_NAMES, LENGTH, Sentinel, SentinelSpec};
use entrl_rewards::{RewardSet, Signal, SignalParams};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{RunFile, SentinelSection};
use crate::data::Problem;
use crate::eval::{EvalSpec, answer_once};
use crate::model::Transformer;
use crate::plan::{ModelInputs, first_problems, reward_set};
use crate::rollout::SamplingParams;
use crate::trajectories::Record;

/// What a Sentinel file says it is.
pub const FORMAT: &str = "entrl-sentinel";
/// The file version this entrl reads and writes.
pub const VERSION: u32 = 1;

/// One judged answer and its feature columns (17 features, `length`, every signal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Problem index within its domain.
    pub index: usize,
    /// The verifier's verdict.
    pub correct: bool,
    /// Column name → value.
    pub columns: BTreeMap<String, f64>,
}

/// A domain's answers (empty and, with `drop_truncated`, truncated answers left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainAnswers {
    /// Domain name.
    pub name: String,
    /// A training domain.
    pub train: bool,
    /// Answers kept.
    pub answers: Vec<Answer>,
    /// Answers dropped (truncated or empty).
    pub dropped: usize,
}

/// How answers are sampled; stored in the Sentinel file, so a monitor samples as the fit did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answering {
    /// Sampling temperature.
    pub temperature: f64,
    /// Top-k log-probs recorded per token.
    pub top_logprobs: usize,
    /// Longest answer.
    pub max_new_tokens: usize,
    /// Drop answers that hit the length limit.
    pub drop_truncated: bool,
    /// Sampling seed.
    pub seed: u64,
    /// The decode loop's layout on the answering device (not stored: a property of the device).
    #[serde(skip)]
    pub policy: crate::rollout::DecodePolicy,
}

impl Answering {
    /// `[sentinel]`'s settings (the length limit falls back to `eval`'s, then `rl`'s).
    pub fn of(run: &RunFile, s: &SentinelSection) -> Self {
        Self {
            temperature: s.temperature,
            top_logprobs: s.top_logprobs,
            max_new_tokens: s
                .max_completion_length
                .or(run.eval.max_completion_length)
                .unwrap_or(run.rl.max_completion_length),
            drop_truncated: s.drop_truncated,
            seed: s.seed,
            policy: run.decode_policy(),
        }
    }
}

/// A fitted Sentinel with the baselines, as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentinelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The model whose answers trained it.
    pub model: String,
    /// How its answers were sampled.
    pub answering: Answering,
    /// The training domains (their held-out parts are estimated, not their training parts).
    pub training_domains: Vec<String>,
    /// Share of a training domain used for training.
    pub train_fraction: f64,
    /// The seed of the split.
    pub seed: u64,
    /// Feature columns, in the classifier's order.
    pub columns: Vec<String>,
    /// The Sentinel.
    pub sentinel: Sentinel,
    /// The same pipeline on `length` alone.
    pub length_only: Sentinel,
    /// ATC baselines: column → fitted threshold.
    pub atc: BTreeMap<String, Atc>,
}

fn answer_columns(r: &Record, features: &[f64; 17]) -> BTreeMap<String, f64> {
    let mut c: BTreeMap<String, f64> = FEATURE_NAMES.iter().map(|n| n.to_string()).zip(*features).collect();
    c.insert(LENGTH.into(), r.tokens.len() as f64);
    for s in Signal::ALL {
        c.insert(s.name().into(), r.signals.get(s));
    }
    c
}

/// Answers `problems` once each and judges them: the kept answers and the number dropped
/// (empty, or truncated when `a.drop_truncated`).
pub fn answer_problems<B: Backend>(
    model: &Transformer<B>,
    inputs: &ModelInputs,
    problems: &[Problem],
    a: &Answering,
    rewards: &RewardSet,
    signals: &SignalParams,
) -> Result<(Vec<Answer>, usize), entrl_rewards::ProgramError> {
    let spec = EvalSpec {
        tok: &inputs.tok,
        prompts: &inputs.prompts,
        rewards,
        eos: &inputs.eos,
        max_new_tokens: a.max_new_tokens,
        batch: 64,
        signals: *signals,
        top_logprobs: a.top_logprobs,
        policy: a.policy,
    };
    let sampling = SamplingParams {
        temperature: a.temperature,
        top_logprobs: a.top_logprobs,
        ..Default::default()
    };
    let (mut answers, mut dropped) = (Vec::new(), 0);
    for r in answer_once(model, problems, &spec, sampling, a.seed)? {
        match r.sentinel_features() {
            Some(f) if !(r.truncated && a.drop_truncated) => answers.push(Answer {
                index: r.prompt_index as usize,
                correct: r.correct,
                columns: answer_columns(&r, &f),
            }),
            _ => dropped += 1,
        }
    }
    Ok((answers, dropped))
}

/// Answers every domain's problems with `model` and judges them.
pub fn collect<B: Backend>(
    model: &Transformer<B>,
    inputs: &ModelInputs,
    run: &RunFile,
    s: &SentinelSection,
) -> anyhow::Result<Vec<DomainAnswers>> {
    let (rewards, signals, answering) = (reward_set(run), run.entropy.signal_params(), Answering::of(run, s));
    let mut out = Vec::new();
    for (i, d) in s.domains.iter().enumerate() {
        let problems = first_problems(&d.source, run.data.eval_seed, d.problems.unwrap_or(s.problems))
            .with_context(|| format!("key 'sentinel.domains[{i}].source' ('{}')", d.name))?;
        let (answers, dropped) = answer_problems(model, inputs, &problems, &answering, &rewards, &signals)?;
        tracing::info!(
            "sentinel domain {}: {} answers kept, {dropped} dropped",
            d.name,
            answers.len()
        );
        out.push(DomainAnswers {
            name: d.name.clone(),
            train: d.train,
            answers,
            dropped,
        });
    }
    Ok(out)
}

/// A training domain's rows split by a seeded shuffle: (training part, held-out part), as the
/// released code does per benchmark (`np.random.seed(42); shuffle; first int(0.8 n)`).
pub fn split(answers: &[Answer], fraction: f64, seed: u64) -> (Vec<&Answer>, Vec<&Answer>) {
    let mut order: Vec<usize> = (0..answers.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let cut = (fraction * answers.len() as f64) as usize;
    let pick = |idx: &[usize]| idx.iter().map(|&i| &answers[i]).collect::<Vec<_>>();
    (pick(&order[..cut]), pick(&order[cut..]))
}

/// The values of `columns` of one answer; a missing column is an error naming it.
pub fn row(a: &Answer, columns: &[String], domain: &str) -> anyhow::Result<Vec<f64>> {
    columns
        .iter()
        .map(|c| {
            a.columns
                .get(c)
                .copied()
                .with_context(|| format!("domain '{domain}': answers have no feature column '{c}'"))
        })
        .collect()
}

/// The feature columns `[sentinel]` selects.
pub fn selected_columns(s: &SentinelSection) -> Vec<String> {
    let mut c: Vec<String> = s
        .features
        .indices()
        .iter()
        .map(|&i| FEATURE_NAMES[i].to_string())
        .collect();
    c.extend(s.extra_features.iter().cloned());
    c
}

/// Fits the Sentinel, the length-only pipeline and the ATC baselines on the training domains'
/// training parts (pooled, then shuffled with the seed).
pub fn fit(
    domains: &[DomainAnswers],
    s: &SentinelSection,
    answering: Answering,
    model: &str,
) -> anyhow::Result<SentinelFile> {
    let mut pooled: Vec<&Answer> = Vec::new();
    for (i, d) in domains.iter().enumerate().filter(|(_, d)| d.train) {
        if d.answers.is_empty() {
            bail!(
                "key 'sentinel.domains[{i}]' ('{}'): no labelled answers to train on ({} dropped as truncated or empty)",
                d.name,
                d.dropped
            );
        }
        pooled.extend(split(&d.answers, s.train_fraction, s.seed).0);
    }
    pooled.shuffle(&mut ChaCha8Rng::seed_from_u64(s.seed));
    let y: Vec<bool> = pooled.iter().map(|a| a.correct).collect();
    let table = |cols: &[String]| -> anyhow::Result<Vec<Vec<f64>>> {
        pooled.iter().map(|a| row(a, cols, "training rows")).collect()
    };
    let spec = SentinelSpec {
        grid: s.grid(),
        calibration: s.calibration_method(),
        cv_folds: s.cv_folds,
        seed: s.seed,
    };
    let names: Vec<&str> = domains.iter().filter(|d| d.train).map(|d| d.name.as_str()).collect();
    let context = |e: String| anyhow::anyhow!("training rows of domains {names:?}: {e}");
    let columns = selected_columns(s);
    let sentinel = Sentinel::fit(&spec, &table(&columns)?, &y).map_err(context)?;
    let length = vec![LENGTH.to_string()];
    let length_only = Sentinel::fit(&spec, &table(&length)?, &y).map_err(context)?;
    let mut atc = BTreeMap::new();
    for c in &s.atc_features {
        let scores: Vec<f64> = table(std::slice::from_ref(c))?.into_iter().map(|r| r[0]).collect();
        atc.insert(c.clone(), Atc::fit(&scores, &y).context("ATC needs both classes")?);
    }
    Ok(SentinelFile {
        format: FORMAT.into(),
        version: VERSION,
        model: model.into(),
        answering,
        training_domains: names.iter().map(|n| n.to_string()).collect(),
        train_fraction: s.train_fraction,
        seed: s.seed,
        columns,
        sentinel,
        length_only,
        atc,
    })
}

impl SentinelFile {
    /// Writes the file (pretty JSON).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)?).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads a file, refusing other formats and versions with a message naming the file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            bail!(
                "{}: not an entrl Sentinel file (its 'format' is {}, expected \"{FORMAT}\")",
                path.display(),
                v.get("format").map_or("missing".into(), |f| f.to_string())
            );
        }
        let version = v.get("version").and_then(|x| x.as_u64());
        if version != Some(VERSION as u64) {
            bail!(
                "{}: Sentinel file version {}, this entrl reads version {VERSION}",
                path.display(),
                version.map_or("missing".into(), |x| x.to_string())
            );
        }
        serde_json::from_value(v).with_context(|| format!("{}: malformed Sentinel file", path.display()))
    }
}
