//! Per-step metrics: one JSON object per line in `metrics.jsonl`, names as verl/TRL users expect.

use entrl_rewards::Signal;
use serde_json::{Map, Value, json};

use super::groups::Sampled;
use super::update::UpdateStats;
use crate::config::RunFile;
use crate::objectives::advantages;
use crate::rollout::{Completion, FinishReason};
use crate::trajectories;

pub use crate::metrics_log::{MetricsLog, TIMING_KEYS, read_lines};

/// The metrics line of a finished step: `step`, `phase`, `phase_step`, `skipped_nonfinite`, the
/// step's own metrics, then `time/step_s` and `perf/tokens_per_s` (rollout tokens for RL, target
/// tokens for SFT).
pub fn step_line(
    state: &crate::checkpoint::TrainerState,
    phase: crate::checkpoint::Phase,
    finite: bool,
    mut step_metrics: Map<String, Value>,
    elapsed: std::time::Duration,
) -> Map<String, Value> {
    let secs = elapsed.as_secs_f64();
    let mut line = Map::new();
    line.insert("step".into(), json!(state.global_step));
    line.insert("phase".into(), json!(phase));
    line.insert("phase_step".into(), json!(state.phase_step));
    line.insert("skipped_nonfinite".into(), json!(!finite));
    line.append(&mut step_metrics);
    let toks = line
        .get("perf/tokens")
        .and_then(Value::as_f64)
        .or_else(|| line.get("sft/tokens").and_then(Value::as_f64))
        .unwrap_or(0.0);
    line.insert("time/step_s".into(), json!(secs));
    line.insert("perf/tokens_per_s".into(), json!(toks / secs.max(1e-9)));
    line
}

/// mean, std (population), min, max.
pub fn summary(x: &[f64]) -> (f64, f64, f64, f64) {
    if x.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let std = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let min = x.iter().copied().fold(f64::INFINITY, f64::min);
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, std, min, max)
}

/// Rollout metrics: rewards (total and per function), accuracy, zero-std share, dynamic
/// sampling, entropy-dynamics signals over every sampled completion, EDIS weights, lengths.
pub fn rollout_metrics(run: &RunFile, sampled: &Sampled, comps: &[&Completion]) -> Map<String, Value> {
    let groups = &sampled.groups;
    let n = comps.len().max(1) as f64;
    let mut m = Map::new();
    if let Some(c) = cov_logp_adv(&sampled.records) {
        m.insert("entropy/cov_logp_adv".into(), json!(c));
    }
    let rewards: Vec<f64> = groups.iter().flat_map(|gr| gr.rewards.iter().copied()).collect();
    let (rm, rs, _, _) = summary(&rewards);
    m.insert("reward/mean".into(), json!(rm));
    m.insert("reward/std".into(), json!(rs));
    for (i, entry) in run.rewards.iter().enumerate() {
        let v: Vec<f64> = groups.iter().flat_map(|gr| gr.parts.iter().map(|p| p[i])).collect();
        m.insert(format!("reward/{}/mean", entry.function.name()), json!(summary(&v).0));
    }
    let correct = groups.iter().flat_map(|gr| gr.correct.iter()).filter(|&&c| c).count();
    m.insert("accuracy".into(), json!(correct as f64 / n));
    let (pass1, passk) = pass_rates(&sampled.records);
    m.insert("pass@1".into(), json!(pass1));
    m.insert("pass@k".into(), json!(passk));
    // over every group judged this step, before dynamic sampling dropped some
    let g = run.rl.num_generations;
    m.insert(
        "frac_reward_zero_std".into(),
        json!(advantages::frac_zero_std(
            &sampled.checked_rewards,
            &advantages::uniform_groups(sampled.checked_rewards.len(), g)
        )),
    );
    m.insert("dynamic_sampling/dropped_groups".into(), json!(sampled.dropped));
    m.insert("dynamic_sampling/rounds".into(), json!(sampled.rounds));
    // entropy dynamics over every completion sampled this step (kept or not)
    m.append(&mut trajectories::signal_metrics(&sampled.records, ""));
    let edis_all: Vec<f64> = sampled.records.iter().map(|x| x.signals.get(Signal::Edis)).collect();
    m.insert("edis/mean".into(), json!(summary(&edis_all).0));
    if run.entropy.weight.enabled {
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

/// Over every completion sampled this step (kept or not), grouped by prompt: pass@1 (the mean
/// correctness) and pass@k with k = the samples drawn per prompt (the unbiased estimator at k = n:
/// the share of prompts with at least one correct sample).
pub fn pass_rates(records: &[crate::record::Record]) -> (f64, f64) {
    let mut per_prompt: std::collections::BTreeMap<u64, (usize, usize)> = Default::default();
    for r in records {
        let e = per_prompt.entry(r.prompt_index).or_default();
        e.0 += 1;
        e.1 += r.correct as usize;
    }
    let n = records.len().max(1) as f64;
    let correct: usize = per_prompt.values().map(|e| e.1).sum();
    let solved = per_prompt.values().filter(|e| e.1 > 0).count();
    (correct as f64 / n, solved as f64 / per_prompt.len().max(1) as f64)
}

/// Loss, entropy, KL, clip ratios, grad norm and mask share, per token of every iteration.
pub fn update_metrics(m: &mut Map<String, Value>, u: &UpdateStats, tokens_in_loss: usize, run: &RunFile) {
    let iters = run.rl.num_iterations as f64;
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
    if run.entropy.top_entropy_quantile < 1.0 {
        m.insert("entropy_mask/kept_ratio".into(), json!(u.kept_tokens / toks));
    }
    if run.entropy.cov_control != crate::objectives::cov::CovControl::None {
        m.insert("cov_control/selected_ratio".into(), json!(u.cov_selected / toks));
    }
    if run.entropy.adaptive.is_some() {
        m.insert("entropy/coef".into(), json!(-u.entropy_coef));
    }
}

/// `entropy/cov_logp_adv`: over the kept completions' tokens, the covariance of the rollout
/// log-prob and the advantage, `mean_t (A − Ā)(logp − l̄ogp)` — the quantity whose sign predicts
/// the entropy change (Cui et al. 2025). `None` without kept tokens.
pub fn cov_logp_adv(records: &[crate::record::Record]) -> Option<f64> {
    let (mut lp, mut adv) = (vec![], vec![]);
    for r in records.iter().filter(|r| r.kept) {
        lp.extend(r.logprobs.iter().copied());
        adv.extend(std::iter::repeat_n(r.advantage as f32, r.logprobs.len()));
    }
    if lp.is_empty() {
        return None;
    }
    let view = crate::objectives::cov::TokenView {
        logp: &lp,
        old: &lp,
        adv: &adv,
        mask: &vec![true; lp.len()],
        cols: 1,
    };
    Some(crate::objectives::cov::mean_covariance(&view))
}
