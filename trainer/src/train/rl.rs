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

use super::batch::rl_batch;
use super::metrics::summary;
use super::optim::{AdamW, lr_at};
use super::rollouts::sample_groups;
use super::run::Ctx;
use super::update::{UpdateConfig, policy_update};
use crate::model::Transformer;
use crate::objectives::{AdvantageSource, EntropyLoss, PolicyLossConfig, advantages};
use crate::rollout::{Completion, FinishReason};
use crate::trajectories::{self, Header};

/// Outcome of one RL step.
pub struct RlOutcome<AB: AutodiffBackend> {
    /// The (possibly updated) policy.
    pub model: Transformer<AB>,
    /// Training-data cursor after this step.
    pub cursor: u64,
    /// Metrics of the step.
    pub metrics: Map<String, Value>,
    /// False when the update was skipped (non-finite loss or gradient).
    pub finite: bool,
    /// Decoded completions for `samples.jsonl` (`logging.log_completions` of them).
    pub samples: Vec<Map<String, Value>>,
}

/// Runs RL step `phase_step` (global step `global_step`) starting at data `cursor`.
pub fn rl_step<AB: AutodiffBackend>(
    ctx: &Ctx<AB::InnerBackend>,
    model: Transformer<AB>,
    opt: &mut AdamW<AB::InnerBackend>,
    phase_step: u64,
    global_step: u64,
    mut cursor: u64,
    device: &AB::Device,
) -> RlOutcome<AB> {
    let r = &ctx.run.rl;
    let e = &ctx.run.entropy;
    let g = r.num_generations;
    let t0 = Instant::now();
    let policy = model.valid();

    // --- rollouts, with EDIS filtering and dynamic sampling ---
    let mut sampled = sample_groups(ctx, &policy, global_step, cursor);
    cursor = sampled.cursor;
    let groups = &sampled.groups;
    let rollout_s = t0.elapsed().as_secs_f64();

    // --- rewards and advantages (EDIS-weighted) ---
    let rewards: Vec<f64> = groups.iter().flat_map(|gr| gr.rewards.iter().copied()).collect();
    let objective = e.objective.traits();
    let mut adv = match objective.advantages {
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
    let comps: Vec<&Completion> = groups.iter().flat_map(|gr| gr.completions.iter()).collect();
    let prompts: Vec<&[u32]> = groups
        .iter()
        .flat_map(|gr| std::iter::repeat_n(gr.prompt.as_slice(), g))
        .collect();
    let truncated: Vec<bool> = comps.iter().map(|c| c.finish_reason == FinishReason::Length).collect();
    let keep: Vec<bool> = truncated
        .iter()
        .map(|&t| !(t && r.mask_truncated_completions))
        .collect();
    let n = comps.len();

    let mut m = Map::new();
    let (rm, rs, _, _) = summary(&rewards);
    m.insert("reward/mean".into(), json!(rm));
    m.insert("reward/std".into(), json!(rs));
    for (i, entry) in ctx.run.rewards.iter().enumerate() {
        let v: Vec<f64> = groups.iter().flat_map(|gr| gr.parts.iter().map(|p| p[i])).collect();
        m.insert(format!("reward/{}/mean", entry.function.name()), json!(summary(&v).0));
    }
    let correct = groups.iter().flat_map(|gr| gr.correct.iter()).filter(|&&c| c).count();
    m.insert("accuracy".into(), json!(correct as f64 / n.max(1) as f64));
    // over every group judged this step, before dynamic sampling dropped some
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
    if e.weight.enabled {
        let w: Vec<f64> = rec_idx.iter().map(|&i| sampled.records[i].weight).collect();
        let (_, _, wmin, wmax) = summary(&w);
        m.insert("edis_weight/min".into(), json!(wmin));
        m.insert("edis_weight/max".into(), json!(wmax));
    }
    if e.trajectories {
        let h = Header {
            kind: "train".into(),
            step: global_step + 1, // the step number of this step's metrics line
            label: String::new(),
            edis: e.edis,
        };
        let dir = ctx.run.output_dir.join("trajectories");
        if let Err(err) = trajectories::write(&dir, &h, &sampled.records) {
            tracing::warn!("trajectory artifact of step {} not written: {err:#}", h.step);
        }
    }
    let samples = super::samples::sample_lines(
        global_step + 1,
        &sampled.records,
        ctx.run.logging.log_completions,
        |i| ctx.prompts.prompt(&ctx.train.get(i).question),
        |t| ctx.tok.decode(t, false),
    );
    let lens: Vec<f64> = comps.iter().map(|c| c.tokens.len() as f64).collect();
    let (lm, _, lmin, lmax) = summary(&lens);
    m.insert("completion_length/mean".into(), json!(lm));
    m.insert("completion_length/min".into(), json!(lmin));
    m.insert("completion_length/max".into(), json!(lmax));
    m.insert(
        "completion/truncated_ratio".into(),
        json!(truncated.iter().filter(|&&t| t).count() as f64 / n.max(1) as f64),
    );
    let raw_h: Vec<f64> = comps
        .iter()
        .flat_map(|c| c.entropies.iter().map(|&h| h as f64))
        .collect();
    m.insert("rollout/entropy_raw".into(), json!(summary(&raw_h).0));
    let lr = lr_at(phase_step, r.learning_rate, r.warmup_steps, r.steps, r.min_lr_ratio);
    m.insert("lr".into(), json!(lr));
    m.insert("time/rollout_s".into(), json!(rollout_s));

    if n == 0 {
        m.insert("skipped".into(), json!("no groups"));
        return RlOutcome {
            model,
            cursor,
            metrics: m,
            finite: true,
            samples,
        };
    }

    // --- update ---
    let batch = rl_batch::<AB::InnerBackend>(
        &prompts,
        &comps.iter().map(|c| c.tokens.as_slice()).collect::<Vec<_>>(),
        &keep,
        &device.clone(),
    );
    let cfg = UpdateConfig {
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
        entropy_coef: match objective.entropy_loss {
            EntropyLoss::Regularizer => e.signed_coef(),
            EntropyLoss::Minimize => 1.0,
        },
        top_entropy_quantile: e.top_entropy_quantile,
    };
    drop(policy);
    let (model, u) = policy_update(model, opt, &batch, &adv, ctx.reference.as_ref(), &cfg);
    let iters = r.num_iterations as f64;
    let toks = (batch.tokens_in_loss as f64 * iters).max(1.0);
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
    if e.top_entropy_quantile < 1.0 {
        m.insert("entropy_mask/kept_ratio".into(), json!(u.kept_tokens / toks));
    }
    m.insert("perf/tokens".into(), json!(lens.iter().sum::<f64>()));
    RlOutcome {
        model,
        cursor,
        metrics: m,
        finite: u.finite,
        samples,
    }
}
