//! One RL step: rollouts (with DAPO dynamic sampling), rewards, advantages, and `num_iterations`
//! clipped-surrogate updates with gradient accumulation over micro-batches.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use serde_json::{Map, Value, json};

use super::batch::rl_batch;
use super::metrics::summary;
use super::optim::{AdamW, GradAccum, clip_scale, lr_at};
use super::run::Ctx;
use crate::model::Transformer;
use crate::objectives::{Normalizer, PolicyLossConfig, advantages};
use crate::rollout::{Completion, FinishReason, RolloutConfig, SamplingParams, generate};
use crate::scoring::score_tokens;

/// A prompt's group as kept for the update.
struct Group {
    prompt: Vec<u32>,
    completions: Vec<Completion>,
    rewards: Vec<f64>,
    parts: Vec<Vec<f64>>,
    correct: Vec<bool>,
}

/// The rollout seed of (run seed, step, dynamic-sampling round): replays exactly on resume.
fn rollout_seed(seed: u64, step: u64, round: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ (round as u64).wrapping_mul(0x94D0_49BB_1331_11EB)
}

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
}

/// Runs RL step `phase_step` (global step `global_step`) starting at data `cursor`.
pub fn rl_step<AB: AutodiffBackend>(
    ctx: &Ctx<AB::InnerBackend>,
    mut model: Transformer<AB>,
    opt: &mut AdamW<AB::InnerBackend>,
    phase_step: u64,
    global_step: u64,
    mut cursor: u64,
    device: &AB::Device,
) -> RlOutcome<AB> {
    let r = &ctx.run.rl;
    let g = r.num_generations;
    let t0 = Instant::now();
    let policy = model.valid();

    // --- rollouts, with dynamic sampling ---
    let mut groups: Vec<Group> = vec![];
    let (mut dropped, mut rounds, mut all_rewards) = (0usize, 0usize, vec![]);
    let sampling = SamplingParams {
        temperature: r.temperature,
        top_p: r.top_p,
        top_k: r.top_k,
        top_logprobs: 0,
        ..Default::default()
    };
    loop {
        let need = r.prompts_per_step - groups.len();
        let problems: Vec<_> = (0..need as u64).map(|k| ctx.train.get(cursor + k)).collect();
        cursor += need as u64;
        let prompts: Vec<Vec<u32>> = problems
            .iter()
            .map(|p| ctx.tok.encode(&ctx.run.data.template.render(&p.question)))
            .collect();
        let cfg = RolloutConfig {
            group_size: g,
            max_new_tokens: r.max_completion_length,
            sampling: sampling.clone(),
            eos_ids: ctx.eos.clone(),
            seed: rollout_seed(ctx.run.seed, global_step, rounds),
            first_prompt_index: 0,
        };
        let out = generate(&policy, &prompts, &cfg);
        rounds += 1;
        for (k, comps) in out.chunks(g).enumerate() {
            let scored: Vec<_> = comps
                .iter()
                .map(|c| {
                    ctx.rewards
                        .score(&ctx.tok.decode(&c.tokens, false), &problems[k].answer, c.tokens.len())
                })
                .collect();
            let rewards: Vec<f64> = scored.iter().map(|s| s.total).collect();
            all_rewards.extend(&rewards);
            let degenerate = rewards.iter().all(|x| (x - rewards[0]).abs() < 1e-12);
            if r.dynamic_sampling && degenerate && rounds <= r.max_resample_rounds {
                dropped += 1;
                continue;
            }
            groups.push(Group {
                prompt: prompts[k].clone(),
                completions: comps.to_vec(),
                parts: scored.iter().map(|s| s.parts.clone()).collect(),
                correct: scored.iter().map(|s| s.correct).collect(),
                rewards,
            });
        }
        if groups.len() >= r.prompts_per_step || !r.dynamic_sampling || rounds > r.max_resample_rounds {
            break;
        }
    }
    let rollout_s = t0.elapsed().as_secs_f64();

    // --- rewards and advantages ---
    let rewards: Vec<f64> = groups.iter().flat_map(|gr| gr.rewards.iter().copied()).collect();
    let adv = advantages::compute(r.advantage_estimator, &rewards, g, r.scale_rewards, r.advantage_eps);
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
    for (i, e) in ctx.run.rewards.iter().enumerate() {
        let v: Vec<f64> = groups.iter().flat_map(|gr| gr.parts.iter().map(|p| p[i])).collect();
        m.insert(format!("reward/{}/mean", e.function.name()), json!(summary(&v).0));
    }
    let correct = groups.iter().flat_map(|gr| gr.correct.iter()).filter(|&&c| c).count();
    m.insert("accuracy".into(), json!(correct as f64 / n.max(1) as f64));
    // over everything sampled this step, before dynamic sampling dropped groups
    m.insert(
        "frac_reward_zero_std".into(),
        json!(advantages::frac_zero_std(&all_rewards, g)),
    );
    m.insert("dynamic_sampling/dropped_groups".into(), json!(dropped));
    m.insert("dynamic_sampling/rounds".into(), json!(rounds));
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
        };
    }

    // --- update ---
    let batch = rl_batch::<AB::InnerBackend>(
        &prompts,
        &comps.iter().map(|c| c.tokens.as_slice()).collect::<Vec<_>>(),
        &keep,
        &device.clone(),
    );
    let (lp, lc) = (batch.prompt_len, batch.completion_len);
    let completion_cols = |x: Tensor<AB::InnerBackend, 2>| x.narrow(1, lp - 1, lc);
    let score_inner = |mdl: &Transformer<AB::InnerBackend>| {
        completion_cols(score_tokens(mdl, batch.tokens.clone(), &batch.pad, r.temperature, 64).logprobs)
    };
    let old_all = (r.num_iterations > 1).then(|| score_inner(&policy));
    let ref_all = (r.beta > 0.0).then(|| score_inner(ctx.reference.as_ref().expect("beta > 0 loads a reference")));
    let pl = PolicyLossConfig {
        loss_type: r.loss_type,
        epsilon: r.epsilon,
        epsilon_high: r.epsilon_high(),
        beta: r.beta,
        max_completion_length: r.max_completion_length,
    };
    let micro = if r.micro_batch_size == 0 {
        n
    } else {
        r.micro_batch_size.min(n)
    };
    let norm_c = Normalizer {
        total_sequences: n,
        total_tokens: batch.tokens_in_loss,
        micro_batches: n.div_ceil(micro),
    };
    let adv_t = Tensor::<AB::InnerBackend, 1>::from_data(
        TensorData::new(adv.iter().map(|&a| a as f32).collect::<Vec<_>>(), [n]),
        device,
    );
    let (mut loss_sum, mut kl_sum, mut low, mut high, mut h_sum, mut grad_norm) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut finite = true;
    for _ in 0..r.num_iterations {
        let mut acc = GradAccum::default();
        for start in (0..n).step_by(micro) {
            let len = micro.min(n - start);
            let rows = |x: Tensor<AB::InnerBackend, 2>| Tensor::<AB, 2>::from_inner(x.narrow(0, start, len));
            let stats = score_tokens(
                &model,
                Tensor::from_inner(batch.tokens.clone().narrow(0, start, len)),
                &batch.pad[start..start + len],
                r.temperature,
                64,
            );
            let logps = stats.logprobs.narrow(1, lp - 1, lc);
            let mask = rows(batch.mask.clone());
            h_sum += (stats.entropies.narrow(1, lp - 1, lc).detach() * mask.clone())
                .sum()
                .into_scalar()
                .elem::<f64>();
            let old = match &old_all {
                Some(o) => rows(o.clone()),
                None => logps.clone().detach(),
            };
            let out = crate::objectives::policy_loss::policy_loss(
                logps,
                old,
                ref_all.as_ref().map(|x| rows(x.clone())),
                mask,
                Tensor::from_inner(adv_t.clone().narrow(0, start, len)),
                &pl,
                &norm_c,
            );
            let lv = out.loss.clone().into_scalar().elem::<f64>();
            if !lv.is_finite() {
                finite = false;
                break;
            }
            loss_sum += lv;
            kl_sum += out.kl_sum;
            low += out.clipped_low;
            high += out.clipped_high;
            let grads = out.loss.backward();
            acc.add(&model, &grads);
        }
        grad_norm = acc.global_norm();
        if !finite || !grad_norm.is_finite() {
            finite = false;
            break;
        }
        model = opt.step(model, &acc, lr, clip_scale(grad_norm, r.max_grad_norm));
    }
    let iters = r.num_iterations as f64;
    let toks = (batch.tokens_in_loss as f64 * iters).max(1.0);
    m.insert("loss".into(), json!(loss_sum / iters));
    m.insert("entropy".into(), json!(h_sum / toks));
    m.insert("kl".into(), json!(kl_sum / toks));
    m.insert("clip_ratio/low".into(), json!(low / toks));
    m.insert("clip_ratio/high".into(), json!(high / toks));
    m.insert("clip_ratio/region".into(), json!((low + high) / toks));
    m.insert("grad_norm".into(), json!(grad_norm));
    m.insert("perf/tokens".into(), json!(lens.iter().sum::<f64>()));
    RlOutcome {
        model,
        cursor,
        metrics: m,
        finite,
    }
}
