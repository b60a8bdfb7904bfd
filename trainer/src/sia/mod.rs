//! `entrl analyze sia`: the Stepwise Informativeness analysis. Each problem gets one chain of
//! thought; the chain's reasoning (before its answer line) is cut into steps; after every prefix
//! of k steps the answer's conditional entropy h_k is estimated two ways:
//!
//! * (a) **teacher-forced gold answer**: context = prompt + k steps + answer cue; h = mean
//!   full-vocabulary entropy at the gold answer's token positions (deterministic; needs labels);
//! * (b) **sampled answers**: M short answers drawn after the same context; h = plug-in entropy of
//!   their distribution (the quantity the theory is about).
//!
//! All prefixes of one chain are scored in one batch (a) and sampled in one batch (b).

pub mod intervals;
pub mod report;

use anyhow::Context;
use burn::tensor::backend::Backend;
use entrl_rewards::extract::extract_last_number;
use entrl_rewards::selection::answer_key;
use entrl_rewards::sia::{Curve, plugin_entropy, step_ends};
use serde::{Deserialize, Serialize};

use crate::config::{RunFile, SiaSection};
use crate::data::Problem;
use crate::eval::{EvalSpec, answer_once};
use crate::model::Transformer;
use crate::plan::{ModelInputs, first_problems, reward_set};
use crate::rollout::{RolloutConfig, SamplingParams, generate};
use crate::scoring::{right_padded, score_tokens};

/// One analysed chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Problem index.
    pub index: usize,
    /// The verifier's verdict on the chain.
    pub correct: bool,
    /// Steps kept (before any answer-stating step, at most `max_steps`).
    pub steps: usize,
    /// h_0..h_K by estimator (a).
    pub gold: Curve,
    /// h_0..h_K by estimator (b) (`None` when `samples = 0`).
    pub sampled: Option<Curve>,
}

/// The numbers in `text` as answer keys.
fn number_keys(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .map(answer_key)
        .collect()
}

/// The chain's reasoning and the byte ends of its kept steps.
fn reasoning_steps<'a>(chain: &'a str, gold: &str, s: &SiaSection) -> (&'a str, Vec<usize>) {
    let cut = chain.rfind(&s.answer_marker);
    let reasoning = &chain[..cut.unwrap_or(chain.len())];
    let own = cut.and_then(|p| extract_last_number(chain[p + s.answer_marker.len()..].lines().next().unwrap_or("")));
    let stated: Vec<String> = [Some(gold.to_string()), own]
        .into_iter()
        .flatten()
        .map(|a| answer_key(&a))
        .collect();
    let mut ends = step_ends(reasoning, s.split);
    if s.exclude_answer_steps {
        let mut start = 0;
        let first_stating = ends.iter().position(|&e| {
            let states = number_keys(&reasoning[start..e]).iter().any(|k| stated.contains(k));
            start = e;
            states
        });
        ends.truncate(first_stating.unwrap_or(ends.len()));
    }
    ends.truncate(s.max_steps);
    (reasoning, ends)
}

/// Estimator (a) for every context: mean entropy over the gold answer's token positions.
pub fn gold_curve<B: Backend>(
    model: &Transformer<B>,
    inputs: &ModelInputs,
    contexts: &[String],
    answer: &str,
) -> Curve {
    let mut rows = Vec::new();
    let mut spans = Vec::new();
    for ctx in contexts {
        let c = inputs.tok.encode(ctx);
        let full = inputs.tok.encode(&format!("{ctx}{answer}"));
        let shared = c.iter().zip(&full).take_while(|(a, b)| a == b).count().max(1);
        spans.push((shared, full.len()));
        rows.push(full);
    }
    let device = model.embed_tokens.val().device();
    let tokens = right_padded::<B>(&rows, 0, &device);
    let stats = score_tokens(model, tokens, &vec![0; rows.len()], 1.0, 64);
    let t = stats.entropies.dims()[1];
    let h: Vec<f32> = stats.entropies.into_data().to_vec().expect("f32 entropies");
    // Position p of the output predicts token p + 1: the answer tokens shared..len are predicted
    // at positions shared − 1 .. len − 1.
    let curve = spans
        .iter()
        .enumerate()
        .map(|(r, &(a, b))| {
            let span = &h[r * t + a - 1..r * t + b - 1];
            span.iter().map(|&v| v as f64).sum::<f64>() / span.len().max(1) as f64
        })
        .collect();
    Curve { h: curve }
}

/// Estimator (b) for every context: plug-in entropy of M sampled answers (the first number on
/// each answer's first line).
fn sampled_curve<B: Backend>(
    model: &Transformer<B>,
    inputs: &ModelInputs,
    contexts: &[String],
    s: &SiaSection,
    index: usize,
    policy: crate::rollout::DecodePolicy,
) -> Curve {
    let prompts: Vec<Vec<u32>> = contexts.iter().map(|c| inputs.tok.encode(c)).collect();
    let cfg = RolloutConfig {
        group_size: s.samples,
        max_new_tokens: s.sample_max_tokens,
        sampling: SamplingParams {
            temperature: s.sample_temperature,
            top_logprobs: 0,
            ..Default::default()
        },
        eos_ids: inputs.eos.clone(),
        seed: s.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        first_prompt_index: 0,
        policy,
    };
    let comps = generate(model, &prompts, &cfg);
    let h = comps
        .chunks(s.samples)
        .map(|group| {
            let keys: Vec<Option<String>> = group
                .iter()
                .map(|c| {
                    let text = inputs.tok.decode(&c.tokens, false);
                    extract_last_number(text.lines().next().unwrap_or("")).map(|a| answer_key(&a))
                })
                .collect();
            plugin_entropy(&keys)
        })
        .collect();
    Curve { h }
}

/// Chains for every problem, then both estimators over each chain's prefixes.
pub fn analyze<B: Backend>(
    model: &Transformer<B>,
    inputs: &ModelInputs,
    run: &RunFile,
    s: &SiaSection,
) -> anyhow::Result<Vec<Trace>> {
    let spec = s.source.as_ref().or(run.data.eval.as_ref()).unwrap_or(&run.data.train);
    let problems: Vec<Problem> = first_problems(spec, run.data.eval_seed, s.problems).context("key 'sia.source'")?;
    let rewards = reward_set(run);
    let spec = EvalSpec {
        tok: &inputs.tok,
        prompts: &inputs.prompts,
        rewards: &rewards,
        eos: &inputs.eos,
        max_new_tokens: s
            .chain_max_tokens
            .or(run.eval.max_completion_length)
            .unwrap_or(run.rl.max_completion_length),
        batch: 64,
        signals: run.entropy.signal_params(),
        top_logprobs: 0,
        policy: run.decode_policy(),
    };
    let sampling = SamplingParams {
        temperature: s.chain_temperature,
        top_logprobs: 0,
        ..Default::default()
    };
    let chains = answer_once(model, &problems, &spec, sampling, s.seed)?;
    let mut traces = Vec::new();
    for (index, (chain, p)) in chains.iter().zip(&problems).enumerate() {
        let text = inputs.tok.decode(&chain.tokens, false);
        let (reasoning, ends) = reasoning_steps(&text, &p.answer, s);
        let prompt = inputs.prompts.problem_prompt(p);
        let contexts: Vec<String> = std::iter::once(0)
            .chain(ends.iter().copied())
            .map(|e| format!("{prompt}{}{}", &reasoning[..e], s.answer_cue))
            .collect();
        let gold = gold_curve(model, inputs, &contexts, &format!("{}{}", s.answer_prefix, p.answer));
        let sampled = (s.samples > 0).then(|| sampled_curve(model, inputs, &contexts, s, index, run.decode_policy()));
        traces.push(Trace {
            index,
            correct: chain.correct,
            steps: ends.len(),
            gold,
            sampled,
        });
        if traces.len() % 64 == 0 || traces.len() == problems.len() {
            tracing::info!("sia: {} of {} chains analysed", traces.len(), problems.len());
        }
    }
    Ok(traces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section() -> SiaSection {
        toml::from_str("").expect("defaults")
    }

    #[test]
    fn reasoning_stops_before_the_answer_line_and_answer_stating_steps() {
        let s = section();
        let chain = "7+5=12\n12-3=9\n#### 9";
        let (r, ends) = reasoning_steps(chain, "9", &s);
        assert_eq!(r, "7+5=12\n12-3=9\n");
        assert_eq!(ends, vec![7], "the step that states 9 and everything after it are cut");
        let wrong = "7+5=12\n12-3=8\n#### 8";
        assert_eq!(
            reasoning_steps(wrong, "9", &s).1,
            vec![7],
            "a wrong trace is cut at its own answer"
        );
        let keep = SiaSection {
            exclude_answer_steps: false,
            ..section()
        };
        assert_eq!(reasoning_steps(chain, "9", &keep).1, vec![7, 14]);
        assert_eq!(number_keys("a -3 and 4.0, x"), vec!["-3", "4"]);
    }
}
