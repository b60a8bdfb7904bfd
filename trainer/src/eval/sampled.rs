//! Sampled evaluation: N completions per problem plus a greedy pass, scored by the verifier and by
//! every trajectory signal. Reports, per data source and overall: greedy accuracy, mean@N,
//! unbiased pass@k, maj@k, majority vote over N, best-of-N by each signal, score-weighted Borda,
//! each signal's AUROC for correctness, EDIS and entropy of correct vs incorrect completions.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use entrl_rewards::selection::{KeptK, answer_key, best_k_of_n_pools, best_of_n, borda_vote, majority_vote};
use entrl_rewards::stats::{auroc, maj_at_k, pass_at_k};
use entrl_rewards::{DeepConfParams, EdisParams, Extractor, RewardFn, RewardSet, Signal};
use serde::{Deserialize, Serialize};

use super::{EvalSpec, greedy_accuracy};
use crate::data::Problem;
use crate::model::Transformer;
use crate::rollout::{RolloutConfig, SamplingParams, generate};
use crate::trajectories::Record;

/// How to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSpec {
    /// Completions per problem (N).
    pub samples: usize,
    /// Sampling temperature / nucleus / top-k.
    pub sampling: SamplingParams,
    /// Seed (completion (i, j) uses stream (seed, problem i, sample j)).
    pub seed: u64,
    /// k values for pass@k and maj@k (those > N are skipped).
    pub ks: Vec<usize>,
    /// k of best-k-of-N (pools of m·k samples, m = 1, 2, 4, ... while m·k <= N).
    pub best_k: usize,
}

/// One problem's completions.
#[derive(Debug, Clone)]
pub struct ProblemResult {
    /// Its `data_source`.
    pub data_source: String,
    /// Greedy completion.
    pub greedy: Record,
    /// N sampled completions.
    pub samples: Vec<Record>,
    /// Answer key of each sample (`None`: nothing extracted).
    pub keys: Vec<Option<String>>,
    /// maj@k of this problem's samples by k (`SampleSpec::ks` up to N), computed once when the
    /// samples are judged: exact up to `MAJ_EXACT_LIMIT` subsets, a fixed-seed estimate beyond,
    /// which is too costly to redo for each bootstrap resample.
    pub maj_at_k: BTreeMap<usize, f64>,
}

impl ProblemResult {
    /// maj@k of the samples, from the stored value when there is one.
    fn maj_at_k(&self, k: usize) -> f64 {
        self.maj_at_k.get(&k).copied().unwrap_or_else(|| {
            let ok: Vec<bool> = self.keys.iter().map(|key| key_correct(self, key)).collect();
            maj_at_k(&self.keys, &ok, k)
        })
    }
}

/// Metrics over a set of problems (schema of `report.json`, stable: fields are only added).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    /// `data_source` or `all`.
    pub data_source: String,
    /// Problems.
    pub problems: usize,
    /// Samples per problem (N).
    pub samples: usize,
    /// Greedy accuracy.
    pub greedy_accuracy: f64,
    /// Mean accuracy of the samples (mean@N).
    pub mean_at_n: f64,
    /// Share of problems with some but not all of their samples correct (0 < c < N): the problems
    /// a group-relative update learns from; errors of uncertain reasoning show up here.
    #[serde(default)]
    pub mixed_share: f64,
    /// Unbiased pass@k, by k.
    pub pass_at_k: BTreeMap<usize, f64>,
    /// maj@k (expected majority-vote accuracy over random k-subsets), by k.
    pub maj_at_k: BTreeMap<usize, f64>,
    /// Majority vote over all N samples (first-seen answer wins ties).
    pub majority_vote: f64,
    /// Best-of-N accuracy: the single most confident sample by each signal.
    pub best_of_n: BTreeMap<String, f64>,
    /// Score-weighted Borda vote accuracy by each signal.
    pub borda: BTreeMap<String, f64>,
    /// AUROC of each signal (oriented: > 0.5 = ranks correct samples as more confident); null if
    /// all samples are correct or all incorrect.
    pub auroc: BTreeMap<String, Option<f64>>,
    /// Within-problem AUROC of each signal: the mean over problems with both correct and
    /// incorrect samples of the AUROC among that problem's samples (what best-of-N selection
    /// depends on; the pooled AUROC also rewards telling easy problems from hard ones). Null if no
    /// problem has mixed outcomes.
    pub auroc_within: BTreeMap<String, Option<f64>>,
    /// Mean EDIS of correct / incorrect samples (null when a class is empty).
    pub edis_correct: Option<f64>,
    /// See `edis_correct`.
    pub edis_incorrect: Option<f64>,
    /// Mean token entropy of correct / incorrect samples.
    pub entropy_correct: Option<f64>,
    /// See `entropy_correct`.
    pub entropy_incorrect: Option<f64>,
    /// Mean sample length (tokens).
    pub mean_length: f64,
    /// k of `best_k_of_n` (0 in reports written before it existed).
    #[serde(default)]
    pub best_k: usize,
    /// The EDIS paper's best-k-of-N (§5.1): by signal, by pool size m·k, the k most confident
    /// samples of each pool kept: their mean accuracy, the best one's, their majority vote's;
    /// averaged over problems and over each problem's disjoint pools.
    #[serde(default)]
    pub best_k_of_n: BTreeMap<String, BTreeMap<usize, KeptK>>,
    /// 95% intervals by a paired bootstrap over problems (`eval.bootstrap` resamples; absent when 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<super::bootstrap::Intervals>,
}

/// Pool sizes m·k of best-k-of-N for N samples: m = 1, 2, 4, ... while m·k <= N.
pub fn best_k_pools(k: usize, n: usize) -> Vec<usize> {
    if k == 0 {
        return vec![];
    }
    std::iter::successors(Some(k), |p| Some(p * 2))
        .take_while(|&p| p <= n)
        .collect()
}

/// The extractor of the first accuracy reward (how answers are read for voting); `auto` if none.
pub fn answer_extractor(rewards: &RewardSet) -> Extractor {
    rewards
        .fns
        .iter()
        .find_map(|(f, _)| match f {
            RewardFn::Accuracy { extractor } => Some(*extractor),
            _ => None,
        })
        .unwrap_or(Extractor::Auto)
}

/// Greedy + N samples for every problem.
pub fn run_problems<B: Backend>(
    model: &Transformer<B>,
    problems: &[Problem],
    spec: &EvalSpec,
    s: &SampleSpec,
) -> Result<Vec<ProblemResult>, entrl_rewards::ProgramError> {
    let greedy = greedy_accuracy(model, problems, spec)?.records;
    let extractor = answer_extractor(spec.rewards);
    let per_call = (256 / s.samples.max(1)).max(1);
    let mut out = Vec::with_capacity(problems.len());
    for (ci, chunk) in problems.chunks(per_call).enumerate() {
        let first = ci * per_call;
        let prompts: Vec<Vec<u32>> = chunk
            .iter()
            .map(|p| spec.tok.encode(&spec.prompts.problem_prompt(p)))
            .collect();
        let cfg = RolloutConfig {
            group_size: s.samples,
            max_new_tokens: spec.max_new_tokens,
            sampling: s.sampling.clone(),
            eos_ids: spec.eos.to_vec(),
            seed: s.seed,
            first_prompt_index: first,
            policy: spec.policy,
        };
        let comps = generate(model, &prompts, &cfg);
        let texts: Vec<String> = comps.iter().map(|c| spec.tok.decode(&c.tokens, false)).collect();
        let of: Vec<&Problem> = chunk.iter().flat_map(|p| std::iter::repeat_n(p, s.samples)).collect();
        let scored = spec.score(&of, &comps.iter().collect::<Vec<_>>(), &texts)?;
        for (k, (group, p)) in comps.chunks(s.samples).zip(chunk).enumerate() {
            let mut samples = vec![];
            let mut keys = vec![];
            for (i, c) in group.iter().enumerate() {
                let (text, sc) = (&texts[k * s.samples + i], &scored[k * s.samples + i]);
                samples.push(Record::new(c, (first + k) as u64, sc.total, sc.correct, &spec.signals));
                keys.push(extractor.extract(text).map(|a| answer_key(&a)));
            }
            let mut r = ProblemResult {
                data_source: p.data_source.clone(),
                greedy: greedy[first + k].clone(),
                samples,
                keys,
                maj_at_k: BTreeMap::new(),
            };
            r.maj_at_k =
                s.ks.iter()
                    .filter(|&&k| k >= 1 && k <= s.samples)
                    .map(|&k| (k, r.maj_at_k(k)))
                    .collect();
            out.push(r);
        }
    }
    Ok(out)
}

/// Whether the answer `key` is correct for this problem: some sample with that key was judged
/// correct (voting never invents an answer no sample gave).
fn key_correct(r: &ProblemResult, key: &Option<String>) -> bool {
    key.is_some() && r.keys.iter().zip(&r.samples).any(|(k, s)| k == key && s.correct)
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Metrics over `results` (all assumed to have the same N), labelled `data_source`.
pub fn summarize(results: &[&ProblemResult], data_source: &str, ks: &[usize], best_k: usize) -> SourceReport {
    let n = results.first().map_or(0, |r| r.samples.len());
    let np = results.len().max(1) as f64;
    let frac = |f: &dyn Fn(&ProblemResult) -> f64| results.iter().map(|r| f(r)).sum::<f64>() / np;
    let all: Vec<&Record> = results.iter().flat_map(|r| r.samples.iter()).collect();
    let labels: Vec<bool> = all.iter().map(|r| r.correct).collect();
    let class_mean = |s: Signal, want: bool| mean(all.iter().filter(|r| r.correct == want).map(|r| r.signals.get(s)));
    let mut rep = SourceReport {
        data_source: data_source.into(),
        problems: results.len(),
        samples: n,
        greedy_accuracy: frac(&|r| f64::from(u8::from(r.greedy.correct))),
        mean_at_n: mean(all.iter().map(|r| f64::from(u8::from(r.correct)))).unwrap_or(0.0),
        mixed_share: frac(&|r| {
            let c = r.samples.iter().filter(|s| s.correct).count();
            f64::from(u8::from(c > 0 && c < n))
        }),
        pass_at_k: BTreeMap::new(),
        maj_at_k: BTreeMap::new(),
        majority_vote: frac(&|r| f64::from(u8::from(key_correct(r, &majority_vote(&r.keys))))),
        best_of_n: BTreeMap::new(),
        borda: BTreeMap::new(),
        auroc: BTreeMap::new(),
        auroc_within: BTreeMap::new(),
        edis_correct: class_mean(Signal::Edis, true),
        edis_incorrect: class_mean(Signal::Edis, false),
        entropy_correct: class_mean(Signal::MeanEntropy, true),
        entropy_incorrect: class_mean(Signal::MeanEntropy, false),
        mean_length: mean(all.iter().map(|r| r.tokens.len() as f64)).unwrap_or(0.0),
        best_k,
        best_k_of_n: BTreeMap::new(),
        intervals: None,
    };
    for &k in ks.iter().filter(|&&k| k >= 1 && k <= n) {
        let c = |r: &ProblemResult| r.samples.iter().filter(|s| s.correct).count();
        rep.pass_at_k.insert(k, frac(&|r| pass_at_k(n, c(r), k)));
        rep.maj_at_k.insert(k, frac(&|r| r.maj_at_k(k)));
    }
    for s in Signal::ALL {
        let values = |r: &ProblemResult| r.samples.iter().map(|x| x.signals.get(s)).collect::<Vec<_>>();
        let best = frac(&|r| best_of_n(&values(r), s).map_or(0.0, |i| f64::from(u8::from(r.samples[i].correct))));
        rep.best_of_n.insert(s.name().into(), best);
        let borda = frac(&|r| f64::from(u8::from(key_correct(r, &borda_vote(&r.keys, &values(r), s)))));
        rep.borda.insert(s.name().into(), borda);
        let conf: Vec<f64> = all.iter().map(|r| s.confidence(r.signals.get(s))).collect();
        rep.auroc.insert(s.name().into(), auroc(&conf, &labels));
        let within = mean(results.iter().filter_map(|r| {
            let conf: Vec<f64> = r.samples.iter().map(|x| s.confidence(x.signals.get(s))).collect();
            auroc(&conf, &r.samples.iter().map(|x| x.correct).collect::<Vec<_>>())
        }));
        rep.auroc_within.insert(s.name().into(), within);
        let by_pool = best_k_pools(best_k, n)
            .into_iter()
            .map(|pool| (pool, mean_kept(results, s, best_k, pool)))
            .collect();
        rep.best_k_of_n.insert(s.name().into(), by_pool);
    }
    rep
}

/// Best-k-of-N with pools of `pool` samples, averaged over problems.
fn mean_kept(results: &[&ProblemResult], s: Signal, k: usize, pool: usize) -> KeptK {
    let mut sum = KeptK::default();
    for r in results {
        let values: Vec<f64> = r.samples.iter().map(|x| x.signals.get(s)).collect();
        let correct: Vec<bool> = r.samples.iter().map(|x| x.correct).collect();
        let one = best_k_of_n_pools(&r.keys, &correct, &values, s, k, pool);
        sum.mean += one.mean;
        sum.best += one.best;
        sum.majority += one.majority;
    }
    let n = results.len().max(1) as f64;
    KeptK {
        mean: sum.mean / n,
        best: sum.best / n,
        majority: sum.majority / n,
    }
}

/// Every scalar metric of a source report under a flat name (undefined AUROCs left out).
pub fn flatten(r: &SourceReport) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    m.insert("greedy_accuracy".into(), r.greedy_accuracy);
    m.insert("mean_at_n".into(), r.mean_at_n);
    m.insert("mixed_share".into(), r.mixed_share);
    m.insert("majority_vote".into(), r.majority_vote);
    for (k, v) in &r.pass_at_k {
        m.insert(format!("pass@k/{k}"), *v);
    }
    for (k, v) in &r.maj_at_k {
        m.insert(format!("maj@k/{k}"), *v);
    }
    for (table, values) in [("best_of_n", &r.best_of_n), ("borda", &r.borda)] {
        for (s, v) in values {
            m.insert(format!("{table}/{s}"), *v);
        }
    }
    for (table, values) in [("auroc", &r.auroc), ("auroc_within", &r.auroc_within)] {
        for (s, v) in values {
            if let Some(v) = v {
                m.insert(format!("{table}/{s}"), *v);
            }
        }
    }
    for (s, pools) in &r.best_k_of_n {
        for (pool, kept) in pools {
            m.insert(format!("best_k_of_n/{s}/{pool}/mean"), kept.mean);
            m.insert(format!("best_k_of_n/{s}/{pool}/majority"), kept.majority);
        }
    }
    m
}

/// How reports are summarised: pass@k/maj@k ks, best-k-of-N's k, bootstrap resamples and seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SummarySpec {
    pub ks: Vec<usize>,
    pub best_k: usize,
    pub resamples: usize,
    pub seed: u64,
}

/// A source's report with its bootstrap intervals (when `spec.resamples > 0`).
fn summarize_with_intervals(results: &[&ProblemResult], data_source: &str, spec: &SummarySpec) -> SourceReport {
    let mut rep = summarize(results, data_source, &spec.ks, spec.best_k);
    if spec.resamples > 0 && !results.is_empty() {
        let values = super::bootstrap::resampled(results, spec.resamples, spec.seed, |pick| {
            let pick: Vec<&ProblemResult> = pick.iter().map(|r| **r).collect();
            flatten(&summarize(&pick, data_source, &spec.ks, spec.best_k))
        });
        rep.intervals = Some(super::bootstrap::intervals(&flatten(&rep), &values, spec.resamples));
    }
    rep
}

/// One report per data source (sorted) followed by `all`.
pub fn report(results: &[ProblemResult], spec: &SummarySpec) -> Vec<SourceReport> {
    let mut sources: Vec<&str> = results.iter().map(|r| r.data_source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let mut out: Vec<SourceReport> = sources
        .iter()
        .map(|&src| {
            let rs: Vec<&ProblemResult> = results.iter().filter(|r| r.data_source == src).collect();
            summarize_with_intervals(&rs, src, spec)
        })
        .collect();
    out.push(summarize_with_intervals(
        &results.iter().collect::<Vec<_>>(),
        "all",
        spec,
    ));
    out
}

/// EDIS parameters and sampling settings used, for the report header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportHeader {
    /// Which checkpoint.
    pub checkpoint: String,
    /// Its global step, when known.
    pub step: Option<u64>,
    /// Samples per problem.
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// EDIS parameters.
    pub edis: EdisParams,
    /// DeepConf parameters.
    #[serde(default)]
    pub deepconf: DeepConfParams,
}
