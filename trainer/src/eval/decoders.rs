//! Decoders as arms of one evaluation (`eval.decoders`): each arm answers every problem with N
//! completions — N samples for sample/EM-INF/adaptive temperature, one tree of at most N leaves
//! for Entropy-Tree — so pass@k compares trees and independent chains at equal leaves. Per arm:
//! mean accuracy of the completions, accuracy of the voted answer (majority for chains, the
//! leaf-weighted `p(a|x)` for trees), pass@k, the AUROC of the answer distribution's predictive
//! entropy for the vote's correctness and of every signal for each completion's, and the cost
//! (prefill tokens, decode-step token rows, forward passes, processor iterations).

use std::collections::BTreeMap;
use std::ops::Range;

use burn::tensor::backend::Backend;
use entrl_rewards::selection::answer_key;
use entrl_rewards::stats::{auroc, pass_at_k};
use entrl_rewards::{ProgramError, Signal};
use serde::{Deserialize, Serialize};

use super::EvalSpec;
use super::bootstrap::{Intervals, intervals_of, resampled};
use super::sampled::answer_extractor;
use crate::data::Problem;
use crate::decoding::tree::{self, LeafWeight, answer_distribution, predictive_entropy, question_span};
use crate::decoding::{self, Decoder, ProcessorStats};
use crate::model::Transformer;
use crate::record::Record;
use crate::rollout::{Completion, DecodeCost, RolloutConfig, SamplingParams};

/// One arm's results (a row of `report.json`'s `decoders`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmReport {
    /// Decoder name.
    pub decoder: String,
    /// Name with the options that tell arms apart.
    #[serde(default)]
    pub label: String,
    /// Its options as run (tree thresholds after calibration).
    pub options: serde_json::Value,
    /// Sampling temperature of the arm.
    pub temperature: f64,
    /// Problems.
    pub problems: usize,
    /// Completions (samples or leaves) per problem, mean.
    pub completions_per_problem: f64,
    /// Mean accuracy of the completions (unweighted).
    pub mean_accuracy: f64,
    /// Accuracy of the voted answer.
    pub vote_accuracy: f64,
    /// pass@k by k: unbiased over the problem's completions (k capped at their number).
    pub pass_at_k: BTreeMap<usize, f64>,
    /// Mean predictive entropy of the answer distribution (nats).
    pub predictive_entropy: f64,
    /// AUROC of −predictive entropy for the vote being correct (null: one class only).
    pub auroc_predictive_entropy: Option<f64>,
    /// AUROC of each signal for each completion being correct.
    pub auroc: BTreeMap<String, Option<f64>>,
    /// Prompt tokens prefilled per problem.
    pub prefill_tokens_per_problem: f64,
    /// Decode-step token rows per problem (the decode compute; shared tree prefixes count once).
    pub decoded_tokens_per_problem: f64,
    /// Forward passes of the whole arm (batched over problems).
    pub forward_passes: usize,
    /// EM-INF Adam steps / bisection midpoints per processed token (0 for sample and tree).
    pub processor_iterations_per_token: f64,
    /// Per problem, in order: what the bootstrap over problems resamples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_problem: Vec<ArmOutcome>,
}

/// One problem's outcome in one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmOutcome {
    /// Share of its completions that are correct.
    pub mean_accuracy: f64,
    /// Whether the voted answer is correct.
    pub vote: bool,
    /// Predictive entropy of its answer distribution (nats).
    pub predictive_entropy: f64,
    /// pass@k by k (k capped at its completions).
    pub pass_at_k: BTreeMap<usize, f64>,
}

/// How an arm samples: the sampling temperature each decoder is run at (sample: the eval's;
/// EM-INF: the released script's 0.1; adaptive temperature: 1, as released on vLLM; tree: greedy
/// between forks).
pub fn arm_temperature(d: &Decoder, eval_temperature: f64) -> f64 {
    match d {
        Decoder::Sample => eval_temperature,
        Decoder::EmInf(_) => decoding::EmInfConfig::RELEASED_TEMPERATURE,
        Decoder::AdaptiveTemperature(_) => 1.0,
        Decoder::Tree(_) => 0.0,
    }
}

/// Everything an arm needs besides the model and problems.
pub struct ArmSpec<'a> {
    /// Completions per problem (N; a tree's leaf budget).
    pub n: usize,
    /// The eval's sampling temperature (the sample arm's).
    pub temperature: f64,
    /// Seed of the samples.
    pub seed: u64,
    /// k of pass@k.
    pub ks: &'a [usize],
    /// Problems whose greedy decodes calibrate a tree's percentile thresholds.
    pub calibration: &'a [Problem],
}

fn encode(spec: &EvalSpec, problems: &[Problem]) -> (Vec<Vec<u32>>, Vec<Range<usize>>) {
    let prompts: Vec<Vec<u32>> = problems
        .iter()
        .map(|p| spec.tok.encode(&spec.prompts.problem_prompt(p)))
        .collect();
    let spans = prompts
        .iter()
        .zip(problems)
        .map(|(p, q)| question_span(p, &spec.tok.encode(&q.question)))
        .collect();
    (prompts, spans)
}

/// The decoder as run: a tree gets N leaves and calibrated thresholds.
fn prepare<B: Backend>(
    model: &Transformer<B>,
    d: &Decoder,
    spec: &EvalSpec,
    arm: &ArmSpec,
    cfg: &RolloutConfig,
) -> Decoder {
    let Decoder::Tree(t) = d else {
        return d.clone();
    };
    let mut t = tree::TreeConfig {
        max_leaves: arm.n,
        ..t.clone()
    };
    if t.needs_calibration() {
        let (prompts, spans) = encode(spec, arm.calibration);
        t = t.calibrated(model, &prompts, cfg, &spans);
    }
    Decoder::Tree(t)
}

/// Runs one arm over `problems`.
pub fn run_arm<B: Backend>(
    model: &Transformer<B>,
    problems: &[Problem],
    spec: &EvalSpec,
    decoder: &Decoder,
    arm: &ArmSpec,
) -> Result<ArmReport, ProgramError> {
    let temperature = arm_temperature(decoder, arm.temperature);
    let is_tree = matches!(decoder, Decoder::Tree(_));
    let base = RolloutConfig {
        group_size: if is_tree { 1 } else { arm.n },
        max_new_tokens: spec.max_new_tokens,
        sampling: SamplingParams {
            temperature,
            top_logprobs: spec.top_logprobs,
            ..Default::default()
        },
        eos_ids: spec.eos.to_vec(),
        seed: arm.seed,
        first_prompt_index: 0,
        policy: spec.policy,
    };
    let decoder = prepare(model, decoder, spec, arm, &base);
    let per_call = (256 / arm.n.max(1)).max(1);
    let (mut cost, mut proc) = (DecodeCost::default(), ProcessorStats::default());
    let mut judged = vec![];
    for (ci, chunk) in problems.chunks(per_call).enumerate() {
        let (prompts, spans) = encode(spec, chunk);
        let cfg = RolloutConfig {
            first_prompt_index: ci * per_call,
            ..base.clone()
        };
        let run = decoding::run(model, &prompts, &cfg, &decoder, &spans);
        add_cost(&mut cost, &mut proc, &run.decoded.cost, &run.processor);
        for (k, p) in chunk.iter().enumerate() {
            let mine: Vec<&Completion> = run.decoded.completions.iter().filter(|c| c.prompt_index == k).collect();
            judged.push(judge(spec, &decoder, p, (ci * per_call + k) as u64, &mine)?);
        }
    }
    Ok(summarize(&decoder, temperature, &judged, arm.ks, cost, proc))
}

fn add_cost(cost: &mut DecodeCost, proc: &mut ProcessorStats, c: &DecodeCost, p: &ProcessorStats) {
    cost.forward_passes += c.forward_passes;
    cost.prefill_tokens += c.prefill_tokens;
    cost.decoded_tokens += c.decoded_tokens;
    proc.steps += p.steps;
    proc.iterations += p.iterations;
}

/// One problem's completions, judged.
struct Judged {
    records: Vec<Record>,
    vote_correct: bool,
    predictive_entropy: f64,
}

fn judge(
    spec: &EvalSpec,
    decoder: &Decoder,
    p: &Problem,
    index: u64,
    comps: &[&Completion],
) -> Result<Judged, ProgramError> {
    let extractor = answer_extractor(spec.rewards);
    let rule = match decoder {
        Decoder::Tree(t) => t.leaf_weight,
        _ => LeafWeight::Frequency,
    };
    let (mut records, mut answers) = (vec![], vec![]);
    let texts: Vec<String> = comps.iter().map(|c| spec.tok.decode(&c.tokens, false)).collect();
    let scored = spec.score(&vec![p; comps.len()], comps, &texts)?;
    for ((c, text), sc) in comps.iter().zip(&texts).zip(scored) {
        records.push(Record::new(c, index, sc.total, sc.correct, &spec.signals));
        let key = extractor.extract(text).map(|a| answer_key(&a));
        answers.push((key, tree::leaf_weight(c, rule)));
    }
    let dist = answer_distribution(&answers);
    // the vote: the most probable extracted answer; correct when a completion with it was judged so
    let vote = dist.iter().find(|d| d.0.is_some()).map(|d| d.0.clone());
    let vote_correct = vote.is_some_and(|v| answers.iter().zip(&records).any(|(a, r)| a.0 == v && r.correct));
    Ok(Judged {
        records,
        vote_correct,
        predictive_entropy: predictive_entropy(&dist),
    })
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

fn summarize(
    decoder: &Decoder,
    temperature: f64,
    judged: &[Judged],
    ks: &[usize],
    cost: DecodeCost,
    proc: ProcessorStats,
) -> ArmReport {
    let np = judged.len().max(1) as f64;
    let all: Vec<&Record> = judged.iter().flat_map(|j| j.records.iter()).collect();
    let labels: Vec<bool> = all.iter().map(|r| r.correct).collect();
    let per_problem: Vec<ArmOutcome> = judged.iter().map(|j| outcome(j, ks)).collect();
    let pass = ks
        .iter()
        .filter(|&&k| k >= 1)
        .map(|&k| (k, mean(per_problem.iter().map(|o| o.pass_at_k[&k]))))
        .collect();
    let pe_conf: Vec<f64> = judged.iter().map(|j| -j.predictive_entropy).collect();
    let vote_labels: Vec<bool> = judged.iter().map(|j| j.vote_correct).collect();
    let auroc_by_signal = Signal::ALL
        .iter()
        .map(|s| {
            let conf: Vec<f64> = all.iter().map(|r| s.confidence(r.signals.get(*s))).collect();
            (s.name().to_string(), auroc(&conf, &labels))
        })
        .collect();
    ArmReport {
        decoder: decoder.name().into(),
        label: decoder.label(),
        options: serde_json::to_value(decoder).unwrap_or_default(),
        temperature,
        problems: judged.len(),
        completions_per_problem: all.len() as f64 / np,
        mean_accuracy: mean(labels.iter().map(|&c| f64::from(u8::from(c)))),
        vote_accuracy: mean(vote_labels.iter().map(|&c| f64::from(u8::from(c)))),
        pass_at_k: pass,
        predictive_entropy: mean(judged.iter().map(|j| j.predictive_entropy)),
        auroc_predictive_entropy: auroc(&pe_conf, &vote_labels),
        auroc: auroc_by_signal,
        prefill_tokens_per_problem: cost.prefill_tokens as f64 / np,
        decoded_tokens_per_problem: cost.decoded_tokens as f64 / np,
        forward_passes: cost.forward_passes,
        processor_iterations_per_token: if proc.steps == 0 {
            0.0
        } else {
            proc.iterations as f64 / proc.steps as f64
        },
        per_problem,
    }
}

fn outcome(j: &Judged, ks: &[usize]) -> ArmOutcome {
    let n = j.records.len();
    let c = j.records.iter().filter(|r| r.correct).count();
    ArmOutcome {
        mean_accuracy: if n == 0 { 0.0 } else { c as f64 / n as f64 },
        vote: j.vote_correct,
        predictive_entropy: j.predictive_entropy,
        pass_at_k: ks
            .iter()
            .filter(|&&k| k >= 1)
            .map(|&k| (k, if n == 0 { 0.0 } else { pass_at_k(n, c, k.min(n)) }))
            .collect(),
    }
}

/// Each arm's metric names in the intervals: `<label>/mean`, `<label>/vote`, `<label>/pass@k`
/// (labels made unique by their position when two arms share one).
pub fn arm_keys(arms: &[ArmReport]) -> Vec<String> {
    arms.iter()
        .enumerate()
        .map(|(i, a)| {
            if arms.iter().filter(|b| b.label == a.label).count() > 1 {
                format!("{} #{}", a.label, i + 1)
            } else {
                a.label.clone()
            }
        })
        .collect()
}

fn arm_metrics(arms: &[ArmReport], names: &[String], greedy: &[bool], pick: &[usize]) -> BTreeMap<String, f64> {
    let n = pick.len().max(1) as f64;
    let mut m = BTreeMap::new();
    m.insert(
        "greedy".to_string(),
        pick.iter().filter(|&&i| greedy[i]).count() as f64 / n,
    );
    for (a, name) in arms.iter().zip(names) {
        let o = |i: usize| &a.per_problem[i];
        m.insert(
            format!("{name}/mean"),
            pick.iter().map(|&i| o(i).mean_accuracy).sum::<f64>() / n,
        );
        m.insert(
            format!("{name}/vote"),
            pick.iter().filter(|&&i| o(i).vote).count() as f64 / n,
        );
        for k in a.pass_at_k.keys() {
            m.insert(
                format!("{name}/pass@{k}"),
                pick.iter().map(|&i| o(i).pass_at_k[k]).sum::<f64>() / n,
            );
        }
        let pe: Vec<f64> = pick.iter().map(|&i| -o(i).predictive_entropy).collect();
        if let Some(a) = auroc(&pe, &pick.iter().map(|&i| o(i).vote).collect::<Vec<_>>()) {
            m.insert(format!("{name}/auroc_pe"), a);
        }
    }
    m
}

/// 95% intervals of every arm's mean accuracy, vote, pass@k and AUROC of its predictive entropy
/// by a bootstrap over problems, and paired differences: each arm's mean accuracy (one answer,
/// as greedy's) and vote against greedy decoding, and each later arm's mean, vote, pass@k and
/// AUROC(PE) against the first arm's.
pub fn arm_intervals(arms: &[ArmReport], greedy: &[bool], resamples: usize, seed: u64) -> Option<Intervals> {
    let n = greedy.len();
    if arms.is_empty() || resamples == 0 || arms.iter().any(|a| a.per_problem.len() != n) {
        return None;
    }
    let names = arm_keys(arms);
    let idx: Vec<usize> = (0..n).collect();
    let full = arm_metrics(arms, &names, greedy, &idx);
    let samples = resampled(&idx, resamples, seed, |pick| {
        arm_metrics(arms, &names, greedy, &pick.iter().map(|&&i| i).collect::<Vec<_>>())
    });
    let mut pairs = vec![];
    for name in &names {
        pairs.push((format!("{name}/mean"), "greedy".to_string()));
        pairs.push((format!("{name}/vote"), "greedy".to_string()));
    }
    for (a, name) in arms.iter().zip(&names).skip(1) {
        let base = &names[0];
        let mut metrics = vec!["mean".to_string(), "vote".to_string(), "auroc_pe".to_string()];
        metrics.extend(a.pass_at_k.keys().map(|k| format!("pass@{k}")));
        pairs.extend(metrics.iter().map(|m| (format!("{name}/{m}"), format!("{base}/{m}"))));
    }
    Some(intervals_of(&full, &samples, resamples, &pairs))
}

#[cfg(test)]
mod tests {
    fn arm(label: &str, outcomes: &[(f64, bool, f64)]) -> super::ArmReport {
        let per_problem: Vec<super::ArmOutcome> = outcomes
            .iter()
            .map(|&(m, v, pe)| super::ArmOutcome {
                mean_accuracy: m,
                vote: v,
                predictive_entropy: pe,
                pass_at_k: [(1, m)].into(),
            })
            .collect();
        super::ArmReport {
            decoder: label.into(),
            label: label.into(),
            options: serde_json::Value::Null,
            temperature: 1.0,
            problems: outcomes.len(),
            completions_per_problem: 1.0,
            mean_accuracy: 0.0,
            vote_accuracy: 0.0,
            pass_at_k: [(1, 0.0)].into(),
            predictive_entropy: 0.0,
            auroc_predictive_entropy: None,
            auroc: Default::default(),
            prefill_tokens_per_problem: 0.0,
            decoded_tokens_per_problem: 0.0,
            forward_passes: 0,
            processor_iterations_per_token: 0.0,
            per_problem,
        }
    }

    /// The paired differences are differences of per-problem means on the same problems, their
    /// intervals contain them, and a vote that is right exactly where greedy is wrong decides.
    #[test]
    fn arm_intervals_pair_the_problems() {
        let n = 40;
        let greedy: Vec<bool> = (0..n).map(|i| i % 4 == 0).collect();
        let a: Vec<(f64, bool, f64)> = (0..n).map(|i| (0.25, i % 4 == 0, (i % 3) as f64)).collect();
        let b: Vec<(f64, bool, f64)> = (0..n)
            .map(|i| (0.5, i % 4 != 0, if i % 4 != 0 { 0.1 } else { 2.0 }))
            .collect();
        let arms = [arm("a", &a), arm("b", &b), arm("b", &b)];
        assert_eq!(super::arm_keys(&arms), ["a", "b #2", "b #3"]);
        let iv = super::arm_intervals(&arms, &greedy, 300, 1).unwrap();
        let d = |k: &str| iv.differences[k];
        assert_eq!(d("a/mean − greedy")[0], 0.0);
        assert_eq!(d("b #2/mean − a/mean")[0], 0.25);
        let [v, lo, hi] = d("b #2/vote − greedy");
        assert_eq!(v, 0.5);
        assert!(lo > 0.0 && hi >= v, "[{lo}, {hi}]");
        // b's predictive entropy is low exactly where its vote is right: AUROC(PE) = 1
        let conf_a: Vec<f64> = a.iter().map(|x| -x.2).collect();
        let auroc_a = entrl_rewards::stats::auroc(&conf_a, &a.iter().map(|x| x.1).collect::<Vec<_>>()).unwrap();
        assert!((d("b #3/auroc_pe − a/auroc_pe")[0] - (1.0 - auroc_a)).abs() < 1e-12);
        assert!(iv.metrics["b #3/auroc_pe"][0] == 1.0 && iv.metrics["b #3/auroc_pe"][1] == 1.0);
        assert!(
            super::arm_intervals(&arms, &greedy[1..], 300, 1).is_none(),
            "problem counts differ"
        );
    }

    #[test]
    fn arm_temperatures_follow_the_released_settings() {
        use super::*;
        assert_eq!(arm_temperature(&Decoder::Sample, 0.7), 0.7);
        assert_eq!(arm_temperature(&Decoder::named("em-inf").unwrap(), 0.7), 0.1);
        assert_eq!(arm_temperature(&Decoder::named("tree").unwrap(), 0.7), 0.0);
    }
}
