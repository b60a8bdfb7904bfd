//! Held-out evaluation: greedy accuracy of a model on problems, checked by the reward functions
//! ([`greedy_accuracy`], used during training); sampled evaluation with best-of-N, pass@k and
//! signal AUROCs ([`sampled`]); and the `entrl eval` job over checkpoints ([`job`]).

pub mod bootstrap;
pub mod decoders;
pub mod edis_sweep;
pub mod job;
pub mod report;
pub mod sampled;

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use entrl_rewards::{BatchScores, ProgramError, RewardSet, ScoreInput, Scored, SignalParams};

use crate::data::{Problem, PromptFormat};
use crate::model::Transformer;
use crate::plan::{EvalPlan, ModelInputs};
use crate::rollout::{Completion, RolloutConfig, SamplingParams, generate};
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
    /// The decode loop's shapes and sampler placement.
    pub policy: crate::rollout::DecodePolicy,
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
            policy: plan.policy,
        }
    }
}

impl EvalSpec<'_> {
    /// Judges completions (`texts` decoded) of the problems `of[j]`, one batch for all.
    pub fn score(&self, of: &[&Problem], comps: &[&Completion], texts: &[String]) -> Result<Vec<Scored>, ProgramError> {
        Ok(score_completions(self.rewards, self.prompts, of, comps, texts)?.scored)
    }
}

/// Judges completions (`texts` decoded) of the problems `of[j]` in one batch: built-in reward
/// functions per completion, each reward program once. The prompt text is rendered only for
/// reward programs, once per run of completions of the same problem.
pub fn score_completions(
    rewards: &RewardSet,
    prompts: &PromptFormat,
    of: &[&Problem],
    comps: &[&Completion],
    texts: &[String],
) -> Result<BatchScores, ProgramError> {
    let programs = rewards.has_programs();
    let mut shown: Vec<String> = Vec::with_capacity(of.len());
    for (j, p) in of.iter().enumerate() {
        let same_as_previous = j > 0 && std::ptr::eq(of[j - 1], *p);
        let text = if !programs {
            String::new()
        } else if same_as_previous {
            shown[j - 1].clone()
        } else {
            prompts.problem_prompt(p)
        };
        shown.push(text);
    }
    let inputs: Vec<ScoreInput> = (0..comps.len())
        .map(|j| ScoreInput {
            prompt: &shown[j],
            completion: &texts[j],
            gold: &of[j].answer,
            len: comps[j].tokens.len(),
            data_source: &of[j].data_source,
            extra: &of[j].extra,
        })
        .collect();
    rewards.score_batch(&inputs)
}

/// Every problem answered once with `sampling` (one batch per `spec.batch` problems) and judged:
/// one record per problem, `prompt_index` = its index; answer i draws from stream (`seed`, i).
pub fn answer_once<B: Backend>(
    model: &Transformer<B>,
    problems: &[Problem],
    spec: &EvalSpec,
    sampling: SamplingParams,
    seed: u64,
) -> Result<Vec<Record>, ProgramError> {
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
            policy: spec.policy,
        };
        let prompts: Vec<Vec<u32>> = chunk
            .iter()
            .map(|p| spec.tok.encode(&spec.prompts.problem_prompt(p)))
            .collect();
        let comps = generate(model, &prompts, &cfg);
        let texts: Vec<String> = comps.iter().map(|c| spec.tok.decode(&c.tokens, false)).collect();
        let scored = spec.score(
            &chunk.iter().collect::<Vec<_>>(),
            &comps.iter().collect::<Vec<_>>(),
            &texts,
        )?;
        for (j, (c, scored)) in comps.iter().zip(scored).enumerate() {
            records.push(Record::new(
                c,
                (ci * batch + j) as u64,
                scored.total,
                scored.correct,
                &spec.signals,
            ));
        }
    }
    Ok(records)
}

/// Greedy decoding of every problem (one batch per `spec.batch` problems) and its verdict.
pub fn greedy_accuracy<B: Backend>(
    model: &Transformer<B>,
    problems: &[Problem],
    spec: &EvalSpec,
) -> Result<GreedyEval, ProgramError> {
    let greedy = SamplingParams {
        temperature: 0.0,
        top_logprobs: spec.top_logprobs,
        ..Default::default()
    };
    let records = answer_once(model, problems, spec, greedy, 0)?;
    let mut per_source: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (r, p) in records.iter().zip(problems) {
        let e = per_source.entry(p.data_source.clone()).or_default();
        e.0 += usize::from(r.correct);
        e.1 += 1;
    }
    let n = problems.len().max(1) as f64;
    Ok(GreedyEval {
        accuracy: records.iter().filter(|r| r.correct).count() as f64 / n,
        per_source,
        mean_length: records.iter().map(|r| r.tokens.len()).sum::<usize>() as f64 / n,
        records,
    })
}
