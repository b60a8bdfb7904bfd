//! One RL step: rollouts (EDIS filtering, DAPO dynamic sampling), rewards or EM-RL rewards,
//! advantages (EDIS-weighted), and `num_iterations` updates with gradient accumulation over
//! micro-batches: the clipped surrogate with an optional entropy regulariser and high-entropy token
//! mask, or EM-FT's token-entropy loss.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use entrl_rewards::Signal;
use entrl_rewards::selection::edis_weights;
use serde_json::{Map, Value, json};

use super::StepOutcome;
use super::batch::rl_batch;
use super::metrics::summary;
use super::optim::{AdamW, lr_at};
use super::rollouts::{Sampled, sample_groups};
use super::run::Ctx;
use super::update::{UpdateConfig, UpdateStats, policy_update};
use crate::model::Transformer;
use crate::objectives::{AdvantageSource, EntropyLoss, PolicyLossConfig, advantages};
use crate::rollout::{Completion, FinishReason};
use crate::trajectories;

/// Runs RL step `phase_step` (global step `global_step`) starting at data `cursor`: rollouts,
/// rewards, advantages, metrics, and the policy update. The step's completions come back in
/// [`StepOutcome::records`] (the caller writes artifacts and samples).
pub fn rl_step<AB: AutodiffBackend>(
    ctx: &Ctx<AB::InnerBackend>,
    model: Transformer<AB>,
    opt: &mut AdamW<AB::InnerBackend>,
    phase_step: u64,
    global_step: u64,
    cursor: u64,
    device: &AB::Device,
) -> StepOutcome<AB> {
    let r = &ctx.run.rl;
    let t0 = Instant::now();
    let mut sampled = sample_groups(ctx, &model.valid(), global_step, cursor);
    let rollout_s = t0.elapsed().as_secs_f64();
    let adv = advantages_of(ctx, &mut sampled);
    let comps: Vec<&Completion> = sampled.groups.iter().flat_map(|gr| gr.completions.iter()).collect();
    let lr = lr_at(phase_step, r.learning_rate, r.warmup_steps, r.steps, r.min_lr_ratio);
    let mut m = rollout_metrics(ctx, &sampled, &comps);
    m.insert("lr".into(), json!(lr));
    m.insert("time/rollout_s".into(), json!(rollout_s));
    let mut outcome = StepOutcome {
        model,
        cursor: sampled.cursor,
        metrics: Map::new(),
        finite: true,
        records: vec![],
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
            .map(|c| !(c.finish_reason == FinishReason::Length && r.mask_truncated_completions))
            .collect();
        let tokens: Vec<&[u32]> = comps.iter().map(|c| c.tokens.as_slice()).collect();
        let batch = rl_batch::<AB::InnerBackend>(&prompts, &tokens, &keep, device);
        let (model, u) = policy_update(
            outcome.model,
            opt,
            &batch,
            &adv,
            ctx.reference.as_ref(),
            &update_config(ctx, lr),
        );
        outcome.model = model;
        outcome.finite = u.finite;
        update_metrics(&mut m, &u, batch.tokens_in_loss, ctx);
        let lens: f64 = comps.iter().map(|c| c.tokens.len() as f64).sum();
        m.insert("perf/tokens".into(), json!(lens));
    }
    outcome.metrics = m;
    outcome.records = sampled.records;
    outcome
}

/// Advantages of the kept completions (group order), EDIS-weighted when enabled; each record
/// gets its advantage and weight.
fn advantages_of(ctx: &Ctx<impl burn::tensor::backend::Backend>, sampled: &mut Sampled) -> Vec<f64> {
    let (r, e) = (&ctx.run.rl, &ctx.run.entropy);
    let g = r.num_generations;
    let groups = &sampled.groups;
    let rewards: Vec<f64> = groups.iter().flat_map(|gr| gr.rewards.iter().copied()).collect();
    let mut adv = match e.objective.traits().advantages {
        AdvantageSource::GroupBaseline => {
            advantages::compute(r.advantage_estimator, &rewards, g, r.scale_rewards, r.advantage_eps)
        }
        AdvantageSource::Zero => vec![0.0; rewards.len()],
    };
    let rec_idx: Vec<usize> = groups.iter().flat_map(|gr| gr.records.iter().copied()).collect();
    if e.weight.enabled {
        let edis: Vec<f64> = rec_idx
            .iter()
            .map(|&i| sampled.records[i].signals.get(Signal::Edis))
            .collect();
        let correct: Vec<bool> = groups.iter().flat_map(|gr| gr.correct.iter().copied()).collect();
        let w = edis_weights(&edis, &correct, g, e.weight.alpha, e.weight.eps);
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

/// Rollout metrics: rewards (total and per function), accuracy, zero-std share, dynamic
/// sampling, entropy-dynamics signals over every sampled completion, EDIS weights, lengths.
fn rollout_metrics(
    ctx: &Ctx<impl burn::tensor::backend::Backend>,
    sampled: &Sampled,
    comps: &[&Completion],
) -> Map<String, Value> {
    let groups = &sampled.groups;
    let n = comps.len().max(1) as f64;
    let mut m = Map::new();
    let rewards: Vec<f64> = groups.iter().flat_map(|gr| gr.rewards.iter().copied()).collect();
    let (rm, rs, _, _) = summary(&rewards);
    m.insert("reward/mean".into(), json!(rm));
    m.insert("reward/std".into(), json!(rs));
    for (i, entry) in ctx.run.rewards.iter().enumerate() {
        let v: Vec<f64> = groups.iter().flat_map(|gr| gr.parts.iter().map(|p| p[i])).collect();
        m.insert(format!("reward/{}/mean", entry.function.name()), json!(summary(&v).0));
    }
    let correct = groups.iter().flat_map(|gr| gr.correct.iter()).filter(|&&c| c).count();
    m.insert("accuracy".into(), json!(correct as f64 / n));
    // over every group judged this step, before dynamic sampling dropped some
    let g = ctx.run.rl.num_generations;
    m.insert(
        "frac_reward_zero_std".into(),
        json!(advantages::frac_zero_std(&sampled.checked_rewards, g)),
    );
    m.insert("dynamic_sampling/dropped_groups".into(), json!(sampled.dropped));
    m.insert("dynamic_sampling/rounds".into(), json!(sampled.rounds));
    // entropy dynamics over every completion sampled this step (kept or not)
    m.append(&mut trajectories::signal_metrics(&sampled.records, ""));
    let edis_all: Vec<f64> = sampled.records.iter().map(|x| x.signals.get(Signal::Edis)).collect();
    m.insert("edis/mean".into(), json!(summary(&edis_all).0));
    if ctx.run.entropy.weight.enabled {
        let w: Vec<f64> = groups
            .iter()
            .flat_map(|gr| gr.records.iter().map(|&i| sampled.records[i].weight))
            .collect();
        let (_, _, wmin, wmax) = summary(&w);
        m.insert("edis_weight/min".into(), json!(wmin));
        m.insert("edis_weight/max".into(), json!(wmax));
    }
    let lens: Vec<f64> = comps.iter().map(|c| c.tokens.len() as f64).collect();
    let (lm, _, lmin, lmax) = summary(&lens);
    m.insert("completion_length/mean".into(), json!(lm));
    m.insert("completion_length/min".into(), json!(lmin));
    m.insert("completion_length/max".into(), json!(lmax));
    let truncated = comps.iter().filter(|c| c.finish_reason == FinishReason::Length).count();
    m.insert("completion/truncated_ratio".into(), json!(truncated as f64 / n));
    let raw_h: Vec<f64> = comps
        .iter()
        .flat_map(|c| c.entropies.iter().map(|&h| h as f64))
        .collect();
    m.insert("rollout/entropy_raw".into(), json!(summary(&raw_h).0));
    m
}

/// The update's settings from `[rl]` and `[entropy]`, at learning rate `lr`.
fn update_config(ctx: &Ctx<impl burn::tensor::backend::Backend>, lr: f64) -> UpdateConfig {
    let (r, e) = (&ctx.run.rl, &ctx.run.entropy);
    UpdateConfig {
        loss: PolicyLossConfig {
            loss_type: r.loss_type,
            epsilon: r.epsilon,
            epsilon_high: r.epsilon_high(),
            beta: r.beta,
            max_completion_length: r.max_completion_length,
        },
        temperature: r.temperature,
        num_iterations: r.num_iterations,
        micro_batch_size: r.micro_batch_size,
        max_grad_norm: r.max_grad_norm,
        lr,
        entropy_coef: match e.objective.traits().entropy_loss {
            EntropyLoss::Regularizer => e.signed_coef(),
            EntropyLoss::Minimize => 1.0,
        },
        top_entropy_quantile: e.top_entropy_quantile,
    }
}

/// Loss, entropy, KL, clip ratios, grad norm and mask share, per token of every iteration.
fn update_metrics(
    m: &mut Map<String, Value>,
    u: &UpdateStats,
    tokens_in_loss: usize,
    ctx: &Ctx<impl burn::tensor::backend::Backend>,
) {
    let iters = ctx.run.rl.num_iterations as f64;
    let toks = (tokens_in_loss as f64 * iters).max(1.0);
    m.insert("loss".into(), json!(u.loss_sum / iters));
    m.insert("entropy".into(), json!(u.entropy_sum / toks));
    m.insert("kl".into(), json!(u.kl_sum / toks));
    m.insert("clip_ratio/low".into(), json!(u.clipped_low / toks));
    m.insert("clip_ratio/high".into(), json!(u.clipped_high / toks));
    m.insert(
        "clip_ratio/region".into(),
        json!((u.clipped_low + u.clipped_high) / toks),
    );
    m.insert("grad_norm".into(), json!(u.grad_norm));
    if ctx.run.entropy.top_entropy_quantile < 1.0 {
        m.insert("entropy_mask/kept_ratio".into(), json!(u.kept_tokens / toks));
    }
}
