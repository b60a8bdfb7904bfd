//! The rollout half of an RL step: sample groups, score them (reward functions, or EM-RL's own
//! log-probs/entropies), EDIS-filter them, apply DAPO dynamic sampling, and keep a [`Record`] of
//! every completion sampled (for metrics and trajectory artifacts).

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use entrl_rewards::selection::edis_filter;
use entrl_rewards::{ProgramError, Scored, Signal};

use crate::data::Problem;
use crate::eval::score_completions;
use crate::model::Transformer;
use crate::objectives::{RewardSource, em_rl};
use crate::plan::RunPlan;
use crate::rollout::{Completion, RolloutConfig, generate};
use crate::trajectories::Record;

/// A prompt's group as kept for the update (G completions).
pub struct Group {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// The kept completions.
    pub completions: Vec<Completion>,
    /// Their rewards (reward functions, or EM-RL's).
    pub rewards: Vec<f64>,
    /// Per reward function, per completion.
    pub parts: Vec<Vec<f64>>,
    /// Verifier verdicts.
    pub correct: Vec<bool>,
    /// Index of each kept completion in [`Sampled::records`].
    pub records: Vec<usize>,
}

/// Everything one step sampled.
pub struct Sampled {
    /// Groups for the update.
    pub groups: Vec<Group>,
    /// Every completion sampled this step, kept or not, in sampling order.
    pub records: Vec<Record>,
    /// Rewards of every group that reached the dynamic-sampling check (for `frac_reward_zero_std`).
    pub checked_rewards: Vec<f64>,
    /// Groups dropped by dynamic sampling.
    pub dropped: usize,
    /// Rollout rounds.
    pub rounds: usize,
    /// Training-data cursor after sampling.
    pub cursor: u64,
    /// Reward programs' batch metrics, one value per scored batch (round).
    pub reward_metrics: BTreeMap<String, Vec<f64>>,
}

/// The rollout seed of (run seed, step, dynamic-sampling round): replays exactly on resume.
fn rollout_seed(seed: u64, step: u64, round: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ (round as u64).wrapping_mul(0x94D0_49BB_1331_11EB)
}

/// The training reward of a completion whose reward functions gave `functions_total`.
pub fn training_reward(source: RewardSource, c: &Completion, functions_total: f64) -> f64 {
    match source {
        RewardSource::RewardFunctions => functions_total,
        RewardSource::SequenceLogLikelihood => em_rl::sequence_reward(c),
        RewardSource::NegativeEntropySum => em_rl::token_reward(c),
    }
}

/// Scores a round's completions (`per_prompt` per problem, in order) in one batch: reward
/// programs get one request per round. Program metrics are added to `s.reward_metrics`.
fn score_round(
    plan: &RunPlan,
    s: &mut Sampled,
    problems: &[Problem],
    out: &[Completion],
    per_prompt: usize,
) -> Result<Vec<Scored>, ProgramError> {
    let texts: Vec<String> = out.iter().map(|c| plan.model.tok.decode(&c.tokens, false)).collect();
    let of: Vec<&Problem> = problems
        .iter()
        .flat_map(|p| std::iter::repeat_n(p, per_prompt))
        .collect();
    let comps: Vec<&Completion> = out.iter().collect();
    let batch = score_completions(plan.rewards(), &plan.model.prompts, &of, &comps, &texts)?;
    for (k, v) in batch.metrics {
        s.reward_metrics.entry(k).or_default().push(v);
    }
    Ok(batch.scored)
}

/// Records one prompt's scored completions (data index `index`), EDIS-filters them and applies
/// DAPO's dynamic sampling: the kept group joins `s.groups`, or counts as dropped.
fn judge_group(
    plan: &RunPlan,
    s: &mut Sampled,
    prompt: &[u32],
    index: u64,
    comps: &[Completion],
    scored: &[Scored],
    dynamic: bool,
) {
    let (r, e) = (&plan.file.rl, &plan.file.entropy);
    let objective = plan.objective.traits();
    let rewards: Vec<f64> = comps
        .iter()
        .zip(scored)
        .map(|(c, sc)| training_reward(objective.rewards, c, sc.total))
        .collect();
    let base = s.records.len();
    for (j, c) in comps.iter().enumerate() {
        s.records
            .push(Record::new(c, index, rewards[j], scored[j].correct, &e.signal_params()));
    }
    let kept: Vec<usize> = if e.filter.enabled {
        let edis: Vec<f64> = (0..comps.len())
            .map(|j| s.records[base + j].signals.get(Signal::Edis))
            .collect();
        let correct: Vec<bool> = scored.iter().map(|x| x.correct).collect();
        edis_filter(&edis, &correct, r.num_generations)
    } else {
        (0..comps.len()).collect()
    };
    let kept_rewards: Vec<f64> = kept.iter().map(|&j| rewards[j]).collect();
    s.checked_rewards.extend(&kept_rewards);
    let degenerate = kept_rewards.iter().all(|x| (x - kept_rewards[0]).abs() < 1e-12);
    if dynamic && degenerate && s.rounds <= r.max_resample_rounds {
        s.dropped += 1;
        return;
    }
    for &j in &kept {
        s.records[base + j].kept = true;
    }
    s.groups.push(Group {
        prompt: prompt.to_vec(),
        completions: kept.iter().map(|&j| comps[j].clone()).collect(),
        parts: kept.iter().map(|&j| scored[j].parts.clone()).collect(),
        correct: kept.iter().map(|&j| scored[j].correct).collect(),
        rewards: kept_rewards,
        records: kept.iter().map(|&j| base + j).collect(),
    });
}

/// Samples `rl.prompts_per_step` groups starting at data `cursor`; fails only when a reward
/// program does.
pub fn sample_groups<B: Backend>(
    plan: &RunPlan,
    policy: &Transformer<B>,
    global_step: u64,
    mut cursor: u64,
) -> Result<Sampled, ProgramError> {
    let r = &plan.file.rl;
    let per_prompt = plan.file.entropy.sampled_per_prompt(r.num_generations);
    let sampling = plan.rollout.params();
    let mut s = Sampled {
        groups: vec![],
        records: vec![],
        checked_rewards: vec![],
        dropped: 0,
        rounds: 0,
        cursor,
        reward_metrics: BTreeMap::new(),
    };
    // dynamic sampling only judges verifier rewards
    let dynamic = r.dynamic_sampling && plan.objective.traits().dynamic_sampling;
    loop {
        let need = r.prompts_per_step - s.groups.len();
        let first = cursor;
        let problems: Vec<_> = (0..need as u64).map(|k| plan.train.get(first + k)).collect();
        cursor += need as u64;
        let prompts: Vec<Vec<u32>> = problems
            .iter()
            .map(|p| plan.model.tok.encode(&plan.model.prompts.problem_prompt(p)))
            .collect();
        let cfg = RolloutConfig {
            group_size: per_prompt,
            max_new_tokens: plan.rollout.max_new_tokens,
            sampling: sampling.clone(),
            eos_ids: plan.model.eos.clone(),
            seed: rollout_seed(plan.file.seed, global_step, s.rounds),
            first_prompt_index: 0,
            policy: plan.decode,
        };
        let out = generate(policy, &prompts, &cfg);
        s.rounds += 1;
        let scored = score_round(plan, &mut s, &problems, &out, per_prompt)?;
        for (k, (comps, scored)) in out.chunks(per_prompt).zip(scored.chunks(per_prompt)).enumerate() {
            judge_group(plan, &mut s, &prompts[k], first + k as u64, comps, scored, dynamic);
        }
        if s.groups.len() >= r.prompts_per_step || !dynamic || s.rounds > r.max_resample_rounds {
            break;
        }
    }
    s.cursor = cursor;
    Ok(s)
}
