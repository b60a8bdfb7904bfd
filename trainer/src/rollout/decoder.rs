//! The decode loop's core, shared by rollouts, evaluation and the inference-time decoders
//! (EM-INF, adaptive temperature, Entropy-Tree).
//!
//! Prompts are left-padded to a common length so every row decodes in lockstep (one cache length
//! for all rows, per-row rotary positions and key masks). Each prompt is prefilled once; its cache
//! rows are repeated for the G samples of its group. Every active row carries its own state
//! ([`Row`]: the completion so far — keyed by its path —, its left padding and its RNG). At each
//! step, for each row:
//!
//! 1. the raw statistics (entropy, self-certainty, top-k log-probs) are computed from the model's
//!    own logits, before anything rewrites them;
//! 2. the hooks' [`DecodeHooks::control`] sees them (and the attention probe, when asked for) and
//!    answers continue, stop, or fork into given tokens;
//! 3. on continue, the hooks' logits processor and the repetition penalty rewrite a copy of the
//!    logits and the sampler draws from it; the recorded log-prob is the raw one.
//!
//! The cache's rows follow the [`super::policy::DecodePolicy`] ([`super::stepper`]): on the CPU
//! finished rows leave the batch and the cache; under fixed shapes (GPU) they idle in their slot.
//! Forked rows are copied in the cache (`KvCache::select_rows`), so children share the parent's
//! prefix without recomputing it. A row's RNG — and the device sampler's noise key — is a pure
//! function of (seed, prompt, sample, fork path), so no completion depends on which rows share its
//! batch.

use std::ops::Range;

use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::completion::{Completion, FinishReason, ForkPoint, RolloutConfig};
use super::device_step::DeviceStep;
use super::sampler::{
    RowStats, StepStats, TokenStep, apply_repetition_penalty, choose, row_rng, splitmix64, stats_and_choose,
};
use super::stepper::{StepOut, Stepper, samples_on_device};
use crate::model::Transformer;

/// What the hooks decide for a row at one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Sample the next token as usual.
    Continue,
    /// End the row here (no token appended; finish reason `Stopped`).
    Stop,
    /// Replace the row by one child per token, each appending its token (at least one token).
    Fork(Vec<u32>),
}

/// What the hooks see of a row at one step. `logits` and `stats` are the model's own.
pub struct StepView<'a> {
    /// The completion so far (its prompt, sample and fork path identify the row).
    pub completion: &'a Completion,
    /// The prompt's tokens.
    pub prompt: &'a [u32],
    /// Generated position of the token about to be chosen.
    pub pos: usize,
    /// Raw logits `[V]` of this step.
    pub logits: &'a [f32],
    /// Statistics of the raw distribution.
    pub stats: &'a StepStats,
    /// Attention probe: last-layer attention mass (mean over heads) of the query that produced
    /// these logits on the keys named by [`DecodeHooks::attention_keys`]; `None` when not asked.
    pub attention: Option<f32>,
}

/// Decisions a decoder plugs into the loop; every method has a do-nothing default.
pub trait DecodeHooks {
    /// Prompt token indices whose attention mass the probe reports for prompt `prompt` of length
    /// `len`; `None` (the default) runs no probe.
    fn attention_keys(&self, _prompt: usize, _len: usize) -> Option<Range<usize>> {
        None
    }
    /// Continue, stop or fork, after the raw statistics.
    fn control(&mut self, _view: &StepView) -> Control {
        Control::Continue
    }
    /// Whether [`Self::control`] reads the logits or may fork (if not, a device sampler may keep
    /// the logits on the device and report only ids and statistics).
    fn reads_logits(&self) -> bool {
        true
    }
    /// Whether [`Self::process`] rewrites logits (if not, the loop skips the copy).
    fn processes_logits(&self) -> bool {
        false
    }
    /// Rewrites a copy of the step's logits before the sampler (EM-INF, adaptive temperature).
    fn process(&mut self, _view: &StepView, _logits: &mut [f32]) {}
}

/// Plain sampling: no probe, no control, no processor.
pub struct Plain;
impl DecodeHooks for Plain {
    fn reads_logits(&self) -> bool {
        false
    }
}

/// What a decode cost, for comparing decoders per unit of compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecodeCost {
    /// Forward passes of the model (one prefill plus one per decode step).
    pub forward_passes: usize,
    /// Prompt tokens run through the prefill (padding excluded).
    pub prefill_tokens: usize,
    /// Tokens fed to decode steps (one per active row per step).
    pub decoded_tokens: usize,
}

/// Completions (ordered by prompt, sample, then fork path) and the cost of making them.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// All finished rows.
    pub completions: Vec<Completion>,
    /// Forward passes and tokens.
    pub cost: DecodeCost,
}

/// One active row: the completion so far and its RNG.
struct Row {
    out: Completion,
    rng: ChaCha8Rng,
}

/// The batch after one step: surviving rows, which old batch row each reads its cache from, and
/// the token each feeds to the next forward.
struct NextBatch {
    rows: Vec<Row>,
    source: Vec<usize>,
    tokens: Vec<u32>,
}

/// The P·G rows before the first token: row r is sample r % G of prompt r / G.
fn root_rows(prompts: usize, cfg: &RolloutConfig) -> Vec<Row> {
    let g = cfg.group_size;
    (0..prompts * g)
        .map(|r| Row {
            out: Completion::empty(r / g, r % g),
            rng: row_rng(cfg.seed, cfg.first_prompt_index + r / g, r % g),
        })
        .collect()
}

impl NextBatch {
    fn with_capacity(n: usize) -> Self {
        Self {
            rows: Vec::with_capacity(n),
            source: Vec::with_capacity(n),
            tokens: Vec::with_capacity(n),
        }
    }
}

/// Decodes `cfg.group_size` rows per prompt under `hooks`.
pub fn decode<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    cfg: &RolloutConfig,
    hooks: &mut dyn DecodeHooks,
) -> Decoded {
    assert!(prompts.iter().all(|p| !p.is_empty()), "decode: empty prompt");
    let mut cost = DecodeCost::default();
    if prompts.is_empty() || cfg.group_size == 0 {
        return Decoded {
            completions: vec![],
            cost,
        };
    }
    let keys: Vec<Option<Range<usize>>> = (0..prompts.len())
        .map(|p| hooks.attention_keys(p, prompts[p].len()))
        .collect();
    let probe = keys.iter().any(Option::is_some).then_some(keys.as_slice());
    let on_device = samples_on_device(cfg, hooks.reads_logits(), hooks.processes_logits());
    let mut rows = root_rows(prompts.len(), cfg);
    let roots: Vec<Completion> = rows.iter().map(|r| r.out.clone()).collect();
    let mut dec = Stepper::prefill(model, prompts, cfg, probe, on_device.then_some(roots.as_slice()));
    cost.forward_passes += 1;
    cost.prefill_tokens += prompts.iter().map(Vec::len).sum::<usize>();
    let mut done = Vec::new();
    for pos in 0..cfg.max_new_tokens {
        let NextBatch {
            rows: kept,
            source,
            tokens,
        } = dec.advance(rows, pos, hooks, &mut done);
        rows = kept;
        if rows.is_empty() {
            break;
        }
        let live: Vec<&Completion> = rows.iter().map(|r| &r.out).collect();
        dec.assign_slots(&source, &live);
        dec.forward(&live, &tokens, pos, probe, on_device);
        cost.forward_passes += 1;
        cost.decoded_tokens += rows.len();
    }
    done.sort_by_cached_key(|c| {
        let path: Vec<u32> = c.forks.iter().map(|f| f.child).collect();
        (c.prompt_index, c.sample_index, path)
    });
    Decoded {
        completions: done,
        cost,
    }
}

impl<'m, 'p, B: Backend> Stepper<'m, 'p, B> {
    /// Decides and appends one token per row (or stops/forks it); finished rows go to `done`.
    ///
    /// The per-row statistics, and the draws when no hook rewrites logits, run in parallel over
    /// rows (each a pure function of the row's logits and RNG); the hooks then see the rows in
    /// order. A draw is made on a copy of the row's RNG and kept only if the hooks continue, so
    /// stopped and forked rows consume exactly what they did when drawing came after the hooks.
    fn advance(
        &self,
        rows: Vec<Row>,
        pos: usize,
        hooks: &mut dyn DecodeHooks,
        done: &mut Vec<Completion>,
    ) -> NextBatch {
        if let StepOut::Device(d) = &self.out {
            return self.advance_device(d, rows, pos, hooks, done);
        }
        let p = &self.cfg.sampling;
        let plain_draws = !hooks.processes_logits() && p.repetition_penalty == 1.0;
        let prepared: Vec<(StepStats, Option<(u32, ChaCha8Rng)>)> = rows
            .par_iter()
            .enumerate()
            .map(|(b, row)| {
                let logits = self.row_logits(b);
                if !plain_draws {
                    return (StepStats::of(logits, p), None);
                }
                let mut rng = row.rng.clone();
                let (stats, token) = stats_and_choose(logits, p, &mut rng);
                (stats, Some((token as u32, rng)))
            })
            .collect();
        let mut next = NextBatch::with_capacity(rows.len());
        for (b, (mut row, (stats, draw))) in rows.into_iter().zip(prepared).enumerate() {
            let logits = self.row_logits(b);
            let view = StepView {
                completion: &row.out,
                prompt: &self.prompts[row.out.prompt_index],
                pos,
                logits,
                stats: &stats,
                attention: self.attention.get(self.slots[b]).copied(),
            };
            match hooks.control(&view) {
                Control::Continue => {
                    let token = match draw {
                        Some((token, rng)) => {
                            row.rng = rng;
                            token
                        }
                        None => self.sample(&view, hooks, &mut row.rng),
                    };
                    self.push(row, stats.step(logits, token), b, pos, &mut next, done);
                }
                Control::Stop => {
                    row.out.finish_reason = FinishReason::Stopped;
                    done.push(row.out);
                }
                Control::Fork(tokens) => {
                    for (child, token) in self.fork(&row, &stats, logits, &tokens, pos) {
                        self.push(child, stats.step(logits, token), b, pos, &mut next, done);
                    }
                }
            }
        }
        next
    }

    /// [`Self::advance`] when the device drew the tokens and computed the statistics (plain
    /// hooks: they may stop a row, never fork it or read its logits).
    fn advance_device(
        &self,
        d: &DeviceStep,
        rows: Vec<Row>,
        pos: usize,
        hooks: &mut dyn DecodeHooks,
        done: &mut Vec<Completion>,
    ) -> NextBatch {
        let mut next = NextBatch::with_capacity(rows.len());
        for (b, mut row) in rows.into_iter().enumerate() {
            let s = self.slots[b];
            let stats = StepStats {
                row: RowStats {
                    logz: d.logz[s] as f64,
                    entropy: d.entropy[s] as f64,
                    self_certainty: d.self_certainty[s] as f64,
                },
                temperature: self.cfg.sampling.stats_temperature,
                top: d.top[s].clone(),
            };
            let view = StepView {
                completion: &row.out,
                prompt: &self.prompts[row.out.prompt_index],
                pos,
                logits: &[],
                stats: &stats,
                attention: self.attention.get(s).copied(),
            };
            match hooks.control(&view) {
                Control::Continue => {
                    let step = TokenStep {
                        token: d.tokens[s],
                        logprob: d.logprob[s],
                        entropy: d.entropy[s],
                        self_certainty: d.self_certainty[s],
                        top: stats.top,
                    };
                    self.push(row, step, b, pos, &mut next, done);
                }
                Control::Stop => {
                    row.out.finish_reason = FinishReason::Stopped;
                    done.push(row.out);
                }
                Control::Fork(_) => panic!("a forking hook reads logits: keep DecodeHooks::reads_logits() true"),
            }
        }
        next
    }

    /// Draws the next token when a hook rewrites logits or a repetition penalty applies (plain
    /// draws were made in [`Self::advance`]'s parallel pass): processor and penalty on a copy, then
    /// the sampler.
    fn sample(&self, view: &StepView, hooks: &mut dyn DecodeHooks, rng: &mut ChaCha8Rng) -> u32 {
        let p = &self.cfg.sampling;
        let mut z = view.logits.to_vec();
        hooks.process(view, &mut z);
        let seen = view.prompt.iter().chain(&view.completion.tokens).copied();
        apply_repetition_penalty(&mut z, seen, p.repetition_penalty);
        choose(&z, p, rng) as u32
    }

    /// One child row per token: the parent's completion plus a fork record (position, child index,
    /// the child's share of the siblings' probability), and the RNG of its path.
    fn fork(&self, row: &Row, stats: &StepStats, logits: &[f32], tokens: &[u32], pos: usize) -> Vec<(Row, u32)> {
        assert!(!tokens.is_empty(), "a fork needs at least one token");
        let probs: Vec<f64> = tokens
            .iter()
            .map(|&t| (stats.logprob(logits, t) as f64).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        let c = &row.out;
        (0..tokens.len())
            .map(|i| {
                let mut out = c.clone();
                out.forks.push(ForkPoint {
                    pos,
                    child: i as u32,
                    share: (probs[i] / total) as f32,
                });
                let prompt = self.cfg.first_prompt_index + c.prompt_index;
                let rng = path_rng(self.cfg.seed, prompt, c.sample_index, &out.forks);
                (Row { out, rng }, tokens[i])
            })
            .collect()
    }

    /// Appends `step` to `row`; the row finishes (EOS, length) or goes on in the next batch.
    fn push(
        &self,
        mut row: Row,
        step: TokenStep,
        source: usize,
        pos: usize,
        next: &mut NextBatch,
        done: &mut Vec<Completion>,
    ) {
        let token = step.token;
        row.out.push(step);
        if self.cfg.eos_ids.contains(&token) {
            row.out.finish_reason = FinishReason::Eos;
            done.push(row.out);
        } else if pos + 1 < self.cfg.max_new_tokens {
            next.rows.push(row);
            next.source.push(source);
            next.tokens.push(token);
        } else {
            done.push(row.out); // finish_reason stays Length
        }
    }
}

/// The RNG of a row: a pure function of (seed, prompt, sample, fork path). A root (no forks) uses
/// [`row_rng`]; a child mixes each fork's (position, child index) into the seed.
pub fn path_rng(seed: u64, prompt: usize, sample: usize, forks: &[ForkPoint]) -> ChaCha8Rng {
    if forks.is_empty() {
        return row_rng(seed, prompt, sample);
    }
    let mix = forks
        .iter()
        .fold(seed, |h, f| splitmix64(h ^ (((f.pos as u64) << 32) | f.child as u64)));
    let mut r = ChaCha8Rng::seed_from_u64(mix);
    r.set_stream(((prompt as u64) << 32) | sample as u64);
    r
}
