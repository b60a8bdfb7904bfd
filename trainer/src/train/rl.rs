//! One RL step: rollouts (EDIS filtering, DAPO dynamic sampling), rewards or EM-RL rewards,
//! advantages (EDIS-weighted), and `num_iterations` updates with gradient accumulation over
//! micro-batches: the clipped surrogate with an optional entropy regulariser and high-entropy token
//! mask, or EM-FT's token-entropy loss.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use entrl_rewards::Signal;
use entrl_rewards::selection::edis_weights;
use serde_json::{Map, json};

use super::StepOutcome;
use super::batch::rl_batch;
use super::groups::{Sampled, sample_groups};
use super::metrics::{rollout_metrics, update_metrics};
use super::parallel::update_on_workers;
use super::update::UpdateConfig;
use crate::checkpoint::TrainerState;
use crate::model::Transformer;
use crate::model::transformer::Precision;
use crate::objectives::{AdvantageSource, EntropyLoss, advantages};
use crate::optim::AdamW;
use crate::plan::RunPlan;
use crate::rollout::{Completion, FinishReason};

/// An RL step that could not run because a reward program failed: the model comes back
/// untouched (the step made no update), so the caller can checkpoint it and stop.
pub struct StepFailure<AB: AutodiffBackend> {
    /// The policy as it was before the step.
    pub model: Transformer<AB>,
    /// What failed.
    pub error: entrl_rewards::ProgramError,
}

/// Runs RL step `phase_step` (global step `global_step`) starting at data `cursor`: rollouts,
/// rewards, advantages, metrics, and the policy update. The step's completions come back in
/// [`StepOutcome::records`] (the caller writes artifacts and samples).
pub fn rl_step<AB: AutodiffBackend>(
    plan: &RunPlan,
    reference: Option<&Transformer<AB::InnerBackend>>,
    model: Transformer<AB>,
    opt: &mut AdamW<AB::InnerBackend>,
    state: &TrainerState,
    workers: &[AB::Device],
) -> Result<StepOutcome<AB>, Box<StepFailure<AB>>> {
    let device = &workers[0];
    let (phase_step, global_step, cursor) = (state.phase_step, state.global_step, state.data_cursor);
    let t0 = Instant::now();
    let mut sampled = match sample_groups(plan, &model.valid(), global_step, cursor) {
        Ok(s) => s,
        Err(error) => return Err(Box::new(StepFailure { model, error })),
    };
    let rollout_s = t0.elapsed().as_secs_f64();
    let adv = advantages_of(plan, &mut sampled);
    let comps: Vec<&Completion> = sampled.groups.iter().flat_map(|gr| gr.completions.iter()).collect();
    let lr = plan.rl.lr_at(phase_step);
    let mut m = rollout_metrics(&plan.file, &sampled, &comps);
    m.insert("lr".into(), json!(lr));
    m.insert("time/rollout_s".into(), json!(rollout_s));
    for (k, v) in &sampled.reward_metrics {
        m.insert(k.clone(), json!(v.iter().sum::<f64>() / v.len() as f64));
    }
    let mut outcome = StepOutcome {
        model,
        cursor: sampled.cursor,
        metrics: Map::new(),
        finite: true,
        records: vec![],
        entropy_coef: None,
    };
    if comps.is_empty() {
        m.insert("skipped".into(), json!("no groups"));
    } else {
        let prompts: Vec<&[u32]> = sampled
            .groups
            .iter()
            .flat_map(|gr| std::iter::repeat_n(gr.prompt.as_slice(), gr.completions.len()))
            .collect();
        let keep: Vec<bool> = comps
            .iter()
            .map(|c| !(c.finish_reason == FinishReason::Length && plan.file.rl.mask_truncated_completions))
            .collect();
        let tokens: Vec<&[u32]> = comps.iter().map(|c| c.tokens.as_slice()).collect();
        let batch = rl_batch::<AB::InnerBackend>(&prompts, &tokens, &keep, plan.decode.length_multiple(), device);
        let (model, u) = update_on_workers(
            outcome.model.with_precision(plan.file.precision),
            opt,
            &batch,
            &adv,
            reference,
            &update_config(plan, lr, state),
            workers,
        );
        outcome.model = model.with_precision(Precision::F32);
        outcome.entropy_coef = plan.file.entropy.adaptive.map(|_| -u.entropy_coef);
        outcome.finite = u.finite;
        update_metrics(&mut m, &u, batch.tokens_in_loss, &plan.file);
        let lens: f64 = comps.iter().map(|c| c.tokens.len() as f64).sum();
        m.insert("perf/tokens".into(), json!(lens));
    }
    outcome.metrics = m;
    outcome.records = sampled.records;
    Ok(outcome)
}

/// Advantages of the kept completions (group order), EDIS-weighted when enabled; each record
/// gets its advantage and weight.
fn advantages_of(plan: &RunPlan, sampled: &mut Sampled) -> Vec<f64> {
    let (r, e) = (&plan.file.rl, &plan.file.entropy);
    let groups = &sampled.groups;
    let rewards: Vec<f64> = groups.iter().flat_map(|gr| gr.rewards.iter().copied()).collect();
    let ranges = advantages::consecutive(groups.iter().map(|gr| gr.rewards.len()));
    let mut adv = match plan.objective.traits().advantages {
        AdvantageSource::GroupBaseline => advantages::compute(
            r.advantage_estimator,
            &rewards,
            &ranges,
            r.scale_rewards,
            r.advantage_eps,
        ),
        AdvantageSource::Zero => vec![0.0; rewards.len()],
    };
    let rec_idx: Vec<usize> = groups.iter().flat_map(|gr| gr.records.iter().copied()).collect();
    if e.weight.enabled {
        let edis: Vec<f64> = rec_idx
            .iter()
            .map(|&i| sampled.records[i].signals.get(Signal::Edis))
            .collect();
        let correct: Vec<bool> = groups.iter().flat_map(|gr| gr.correct.iter().copied()).collect();
        let w = edis_weights(&edis, &correct, r.num_generations, e.weight.alpha, e.weight.eps);
        for ((a, wi), &i) in adv.iter_mut().zip(&w).zip(&rec_idx) {
            *a *= wi;
            sampled.records[i].weight = *wi;
        }
    }
    for (&a, &i) in adv.iter().zip(&rec_idx) {
        sampled.records[i].advantage = a;
    }
    adv
}

/// The update's settings from `[rl]` and `[entropy]`, at learning rate `lr`; an adaptive entropy
/// coefficient starts from its value in `state` (`entropy.coef` at first).
fn update_config(plan: &RunPlan, lr: f64, state: &TrainerState) -> UpdateConfig {
    let (r, e) = (&plan.file.rl, &plan.file.entropy);
    UpdateConfig {
        loss: plan.loss,
        temperature: plan.rollout.temperature,
        num_iterations: r.num_iterations,
        micro_batch_size: r.micro_batch_size,
        max_grad_norm: plan.rl.max_grad_norm,
        lr,
        entropy_coef: match (plan.objective.traits().entropy_loss, e.adaptive) {
            (EntropyLoss::Regularizer, Some(_)) => -state.entropy_coef.unwrap_or(e.coef), // a bonus
            (EntropyLoss::Regularizer, None) => e.signed_coef(),
            (EntropyLoss::Minimize, _) => 1.0,
        },
        top_entropy_quantile: e.top_entropy_quantile,
        adaptive_entropy: e.adaptive,
        seed: plan.file.seed ^ state.global_step.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    }
}
