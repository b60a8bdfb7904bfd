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
    let mut pass = BTreeMap::new();
    for &k in ks.iter().filter(|&&k| k >= 1) {
        let v = mean(judged.iter().map(|j| {
            let n = j.records.len();
            let c = j.records.iter().filter(|r| r.correct).count();
            if n == 0 { 0.0 } else { pass_at_k(n, c, k.min(n)) }
        }));
        pass.insert(k, v);
    }
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
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arm_temperatures_follow_the_released_settings() {
        use super::*;
        assert_eq!(arm_temperature(&Decoder::Sample, 0.7), 0.7);
        assert_eq!(arm_temperature(&Decoder::named("em-inf").unwrap(), 0.7), 0.1);
        assert_eq!(arm_temperature(&Decoder::named("tree").unwrap(), 0.7), 0.0);
    }
}
