//! Held-out evaluation: greedy accuracy of a model on problems, checked by the reward functions
//! ([`greedy_accuracy`], used during training); sampled evaluation with best-of-N, pass@k and
//! signal AUROCs ([`sampled`]); and the `entrl eval` job over checkpoints ([`job`]).

pub mod decoders;
pub mod job;
pub mod report;
pub mod sampled;

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use entrl_rewards::{RewardSet, SignalParams};

use crate::data::{Problem, PromptFormat};
use crate::model::Transformer;
use crate::plan::{EvalPlan, ModelInputs};
use crate::rollout::{RolloutConfig, SamplingParams, generate};
use crate::tokenizer::Tokenizer;
use crate::trajectories::Record;

/// Greedy evaluation result.
#[derive(Debug, Clone, PartialEq)]
pub struct GreedyEval {
    /// Share of problems answered correctly.
    pub accuracy: f64,
    /// Per `data_source`: (correct, total).
    pub per_source: BTreeMap<String, (usize, usize)>,
    /// Mean completion length (tokens).
    pub mean_length: f64,
    /// Every greedy completion with its verdict and signals (prompt_index = problem index).
    pub records: Vec<Record>,
}

/// How problems are posed and judged.
pub struct EvalSpec<'a> {
    /// Tokenizer.
    pub tok: &'a Tokenizer,
    /// Prompt format.
    pub prompts: &'a PromptFormat,
    /// Reward functions (the first accuracy-type verdict decides correctness).
    pub rewards: &'a RewardSet,
    /// Ids that end a completion.
    pub eos: &'a [u32],
    /// Longest completion.
    pub max_new_tokens: usize,
    /// Problems per generation batch.
    pub batch: usize,
    /// Parameters of the completions' signals.
    pub signals: SignalParams,
    /// Top-k log-probs recorded per generated token.
    pub top_logprobs: usize,
}

impl<'a> EvalSpec<'a> {
    /// Greedy decoding's settings for the plan's held-out evaluation and a model's inputs.
    pub fn new(plan: &'a EvalPlan, model: &'a ModelInputs) -> Self {
        Self {
            tok: &model.tok,
            prompts: &model.prompts,
            rewards: &plan.rewards,
            eos: &model.eos,
            max_new_tokens: plan.sampled.max_new_tokens,
            batch: 256,
            signals: plan.signals,
            top_logprobs: plan.sampled.top_logprobs,
        }
    }
}

/// Every problem answered once with `sampling` (one batch per `spec.batch` problems) and judged:
/// one record per problem, `prompt_index` = its index; answer i draws from stream (`seed`, i).
pub fn answer_once<B: Backend>(
    model: &Transformer<B>,
    problems: &[Problem],
    spec: &EvalSpec,
    sampling: SamplingParams,
    seed: u64,
) -> Vec<Record> {
    let batch = spec.batch.max(1);
    let mut records = Vec::with_capacity(problems.len());
    for (ci, chunk) in problems.chunks(batch).enumerate() {
        let cfg = RolloutConfig {
            group_size: 1,
            max_new_tokens: spec.max_new_tokens,
            sampling: sampling.clone(),
            eos_ids: spec.eos.to_vec(),
            seed,
            first_prompt_index: ci * batch,
        };
        let prompts: Vec<Vec<u32>> = chunk
            .iter()
            .map(|p| spec.tok.encode(&spec.prompts.prompt(&p.question)))
            .collect();
        for (j, (c, p)) in generate(model, &prompts, &cfg).iter().zip(chunk).enumerate() {
            let text = spec.tok.decode(&c.tokens, false);
            let scored = spec.rewards.score(&text, &p.answer, c.tokens.len());
            records.push(Record::new(
                c,
                (ci * batch + j) as u64,
                scored.total,
                scored.correct,
                &spec.signals,
            ));
        }
    }
    records
}

/// Greedy decoding of every problem (one batch per `spec.batch` problems) and its verdict.
pub fn greedy_accuracy<B: Backend>(model: &Transformer<B>, problems: &[Problem], spec: &EvalSpec) -> GreedyEval {
    let greedy = SamplingParams {
        temperature: 0.0,
        top_logprobs: spec.top_logprobs,
        ..Default::default()
    };
    let records = answer_once(model, problems, spec, greedy, 0);
    let mut per_source: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (r, p) in records.iter().zip(problems) {
        let e = per_source.entry(p.data_source.clone()).or_default();
        e.0 += usize::from(r.correct);
        e.1 += 1;
    }
    let n = problems.len().max(1) as f64;
    GreedyEval {
        accuracy: records.iter().filter(|r| r.correct).count() as f64 / n,
        per_source,
        mean_length: records.iter().map(|r| r.tokens.len()).sum::<usize>() as f64 / n,
        records,
    }
}
