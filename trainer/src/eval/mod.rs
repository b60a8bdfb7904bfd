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

/// Greedy decoding of every problem (one batch per `spec.batch` problems) and its verdict.
pub fn greedy_accuracy<B: Backend>(model: &Transformer<B>, problems: &[Problem], spec: &EvalSpec) -> GreedyEval {
    let EvalSpec {
        tok,
        prompts,
        rewards,
        eos,
        max_new_tokens,
        batch,
        signals,
        top_logprobs,
    } = *spec;
    let cfg = RolloutConfig {
        group_size: 1,
        max_new_tokens,
        sampling: SamplingParams {
            temperature: 0.0,
            top_logprobs,
            ..Default::default()
        },
        eos_ids: eos.to_vec(),
        seed: 0,
        first_prompt_index: 0,
    };
    let mut per_source: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut correct, mut len) = (0usize, 0usize);
    let mut records = Vec::with_capacity(problems.len());
    for (ci, chunk) in problems.chunks(batch.max(1)).enumerate() {
        let prompts: Vec<Vec<u32>> = chunk.iter().map(|p| tok.encode(&prompts.prompt(&p.question))).collect();
        for (j, (c, p)) in generate(model, &prompts, &cfg).iter().zip(chunk).enumerate() {
            let text = tok.decode(&c.tokens, false);
            let scored = rewards.score(&text, &p.answer, c.tokens.len());
            let ok = scored.correct;
            let index = (ci * batch.max(1) + j) as u64;
            records.push(Record::new(c, index, scored.total, ok, &signals));
            correct += usize::from(ok);
            len += c.tokens.len();
            let e = per_source.entry(p.data_source.clone()).or_default();
            e.0 += usize::from(ok);
            e.1 += 1;
        }
    }
    let n = problems.len().max(1) as f64;
    GreedyEval {
        accuracy: correct as f64 / n,
        per_source,
        mean_length: len as f64 / n,
        records,
    }
}
