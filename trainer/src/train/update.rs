//! The policy update as one callable unit: `num_iterations` optimizer steps on one rollout batch,
//! each accumulating the gradients of its micro-batches (the clipped surrogate with optional KL,
//! high-entropy token mask and entropy term — EM-FT's loss is the entropy term alone, its
//! advantages being 0), then one global-norm clip and an AdamW step. The training loop and the
//! tests call the same functions.
//!
//! Shapes: `n` completions, `Lp` prompt columns, `Lc` completion columns; the batch holds
//! `[n, Lp + Lc]` tokens and a `[n, Lc]` loss mask.

use std::ops::Range;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};

use super::batch::RlBatch;
use crate::model::Transformer;
use crate::objectives::cov::{CovControl, CovTerms, TokenView};
use crate::objectives::entropy::{entropy_term, high_entropy_mask};
use crate::objectives::policy_loss::CovLoss;
use crate::objectives::{Normalizer, PolicyLossConfig};
use crate::optim::{AdamW, GradAccum, clip_scale};
use crate::scoring::{CompletionRows, Entropies, score_completions};

/// Everything the update needs besides the model, the batch and the advantages.
#[derive(Debug, Clone)]
pub struct UpdateConfig {
    /// Clipped surrogate, KL and token aggregation.
    pub loss: PolicyLossConfig,
    /// Temperature of the scoring pass (the rollout's sampling temperature).
    pub temperature: f64,
    /// Optimizer steps on the same batch (old log-probs from before the first).
    pub num_iterations: usize,
    /// Completions per forward/backward; 0 = all at once.
    pub micro_batch_size: usize,
    /// Global-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// Learning rate of this step.
    pub lr: f64,
    /// Weight of the token-mean entropy added to the loss: EM-FT 1, a penalty `+coef`, a bonus
    /// `−coef`, none 0.
    pub entropy_coef: f64,
    /// Only the top-ρ entropy tokens of a micro-batch carry the surrogate (1 = all; TRL's).
    pub top_entropy_quantile: f64,
    /// TRL's adaptive entropy coefficient: after every optimizer step the bonus coefficient moves
    /// towards keeping the token entropy at a target (`entropy_coef` is then `−coef`).
    pub adaptive_entropy: Option<crate::objectives::entropy::AdaptiveEntropy>,
    /// Seed of Clip-Cov's random pick (mixed with the micro-batch's first row).
    pub seed: u64,
}

/// What one update measured, summed over its iterations and micro-batches.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UpdateStats {
    /// Sum of the micro-batch losses, over iterations (÷ iterations = the mean step loss).
    pub loss_sum: f64,
    /// Σ masked token entropies.
    pub entropy_sum: f64,
    /// Σ masked token KL.
    pub kl_sum: f64,
    /// Tokens clipped below / above.
    pub clipped_low: f64,
    /// See `clipped_low`.
    pub clipped_high: f64,
    /// Tokens kept by the high-entropy mask.
    pub kept_tokens: f64,
    /// Gradient norm of the last iteration (before clipping).
    pub grad_norm: f64,
    /// Tokens selected by the covariance control (Clip-Cov dropped, KL-Cov penalised).
    pub cov_selected: f64,
    /// The entropy coefficient after the update (moves under the adaptive control).
    pub entropy_coef: f64,
    /// False when a loss or gradient was not finite (that step was skipped).
    pub finite: bool,
}

/// One micro-batch's loss with gradient, and its measurements.
pub struct MicroLoss<AB: AutodiffBackend> {
    /// The loss to differentiate.
    pub loss: Tensor<AB, 1>,
    /// Its statistics (loss value, entropy, KL, clipping, kept tokens; `finite`).
    pub stats: UpdateStats,
}

/// Loss of rows `rows` of `batch`: the policy loss plus `cfg.entropy_coef`·H̄. `adv` `[n]` holds
/// every row's advantage; `old` and `reference` are `[n, Lc]` log-probs (`old = None`: the
/// current policy's, detached — a first iteration).
#[allow(clippy::too_many_arguments)]
pub fn micro_batch_loss<AB: AutodiffBackend>(
    model: &Transformer<AB>,
    batch: &RlBatch<AB::InnerBackend>,
    rows: Range<usize>,
    adv: &Tensor<AB::InnerBackend, 1>,
    old: Option<&Tensor<AB::InnerBackend, 2>>,
    reference: Option<&Tensor<AB::InnerBackend, 2>>,
    cfg: &UpdateConfig,
    norm: &Normalizer,
) -> MicroLoss<AB> {
    let (lp, lc) = (batch.prompt_len, batch.completion_len);
    let (start, len) = (rows.start, rows.len());
    let device = batch.mask.device();
    let rows_of = |x: Tensor<AB::InnerBackend, 2>| Tensor::<AB, 2>::from_inner(x.narrow(0, start, len));
    // the entropy carries a gradient only when the loss has an entropy term
    let mode = if cfg.entropy_coef != 0.0 {
        Entropies::Differentiable
    } else {
        Entropies::Detached
    };
    let (logps, h_tok) = score_completions(
        model,
        CompletionRows {
            tokens: Tensor::from_inner(batch.tokens.clone().narrow(0, start, len)),
            pad: &batch.pad[start..start + len],
            prompt_len: lp,
            prompt_of_row: &batch.prompt_of_row[start..start + len],
        },
        cfg.temperature,
        64,
        mode,
    ); // [len, Lc] each
    let h_tok = h_tok.expect("entropies asked for");
    let mask = rows_of(batch.mask.clone());
    let mut stats = UpdateStats {
        entropy_sum: (h_tok.clone().detach() * mask.clone())
            .sum()
            .into_scalar()
            .elem::<f64>(),
        ..Default::default()
    };
    let old = match old {
        Some(o) => rows_of(o.clone()),
        None => logps.clone().detach(),
    };
    let cov = cov_terms(&logps, &old, adv.clone().narrow(0, start, len), &mask, cfg, start);
    stats.cov_selected = cov.selected as f64;
    let entropy_keep = (cfg.top_entropy_quantile < 1.0).then(|| {
        let hv = h_tok
            .clone()
            .detach()
            .into_data()
            .to_vec::<f32>()
            .expect("f32 entropies");
        let mv: Vec<bool> = mask.clone().into_data().iter::<f32>().map(|x| x > 0.5).collect();
        let keep = high_entropy_mask(&hv, &mv, cfg.top_entropy_quantile);
        stats.kept_tokens = keep.iter().filter(|&&k| k).count() as f64;
        let keep: Vec<f32> = keep.iter().map(|&k| f32::from(u8::from(k))).collect();
        Tensor::<AB, 2>::from_data(TensorData::new(keep, [len, lc]), &device)
    });
    let as_tensor = |v: Vec<f32>| Tensor::<AB, 2>::from_data(TensorData::new(v, [len, lc]), &device);
    let surrogate_mask = match (entropy_keep, cov.keep.map(as_tensor)) {
        (Some(a), Some(b)) => Some(a * b),
        (a, b) => a.or(b),
    };
    let cov_loss = CovLoss {
        penalty: cov.penalty.map(as_tensor),
        unclipped: cov.unclipped,
    };
    let out = crate::objectives::policy_loss::policy_loss(
        logps,
        old,
        reference.map(|x| rows_of(x.clone())),
        mask.clone(),
        surrogate_mask,
        Tensor::from_inner(adv.clone().narrow(0, start, len)),
        &cfg.loss,
        norm,
        cov_loss,
    );
    let loss = if cfg.entropy_coef != 0.0 {
        out.loss.clone() + entropy_term(h_tok, mask, batch.tokens_in_loss) * cfg.entropy_coef
    } else {
        out.loss.clone()
    };
    stats.loss_sum = loss.clone().into_scalar().elem::<f64>();
    stats.finite = stats.loss_sum.is_finite();
    stats.kl_sum = out.kl_sum;
    stats.clipped_low = out.clipped_low;
    stats.clipped_high = out.clipped_high;
    MicroLoss { loss, stats }
}

/// The covariance control's terms for one micro-batch (none without a control: no host copy).
fn cov_terms<AB: AutodiffBackend>(
    logps: &Tensor<AB, 2>,
    old: &Tensor<AB, 2>,
    adv: Tensor<AB::InnerBackend, 1>,
    mask: &Tensor<AB, 2>,
    cfg: &UpdateConfig,
    start: usize,
) -> CovTerms {
    if cfg.loss.cov_control == CovControl::None {
        return CovTerms::default();
    }
    let host = |t: Tensor<AB, 2>| t.detach().into_data().convert::<f32>().to_vec::<f32>().expect("f32");
    let (lp, od) = (host(logps.clone()), host(old.clone()));
    let mk: Vec<bool> = host(mask.clone()).iter().map(|&x| x > 0.5).collect();
    let av = adv.into_data().convert::<f32>().to_vec::<f32>().expect("f32");
    let view = TokenView {
        logp: &lp,
        old: &od,
        adv: &av,
        mask: &mk,
        cols: logps.dims()[1],
    };
    let clip = (1.0 - cfg.loss.epsilon, 1.0 + cfg.loss.epsilon_high);
    cfg.loss
        .cov_control
        .terms(&view, clip, cfg.seed ^ ((start as u64) << 32))
}

/// `cfg.num_iterations` AdamW steps of `model` on `batch` with per-row `advantages`; `reference`
/// (when β > 0) is the frozen policy of the KL term. A non-finite loss or gradient skips the step
/// (and the remaining iterations) and reports `finite = false`.
pub fn policy_update<AB: AutodiffBackend>(
    model: Transformer<AB>,
    opt: &mut AdamW<AB::InnerBackend>,
    batch: &RlBatch<AB::InnerBackend>,
    advantages: &[f64],
    reference: Option<&Transformer<AB::InnerBackend>>,
    cfg: &UpdateConfig,
) -> (Transformer<AB>, UpdateStats) {
    policy_update_on(model, opt, batch, advantages, reference, cfg, Peer::ALONE)
}

/// One worker of a data-parallel update ([`super::parallel`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// This worker's index.
    pub id: usize,
    /// Workers in the group.
    pub count: usize,
}

impl Peer {
    /// A single worker: no collective.
    pub const ALONE: Peer = Peer { id: 0, count: 1 };
}

/// [`policy_update`] as worker `peer`: micro-batch i runs on worker i mod count; before each
/// optimizer step the gradients and the measurements are summed over the workers (burn's
/// collective all-reduce), so every worker takes the same step and reports the same statistics.
pub fn policy_update_on<AB: AutodiffBackend>(
    mut model: Transformer<AB>,
    opt: &mut AdamW<AB::InnerBackend>,
    batch: &RlBatch<AB::InnerBackend>,
    advantages: &[f64],
    reference: Option<&Transformer<AB::InnerBackend>>,
    cfg: &UpdateConfig,
    peer: Peer,
) -> (Transformer<AB>, UpdateStats) {
    let n = advantages.len();
    let device = batch.mask.device();
    let score_inner = |mdl: &Transformer<AB::InnerBackend>| {
        let rows = CompletionRows {
            tokens: batch.tokens.clone(),
            pad: &batch.pad,
            prompt_len: batch.prompt_len,
            prompt_of_row: &batch.prompt_of_row,
        };
        score_completions(mdl, rows, cfg.temperature, 64, Entropies::Skip).0 // [n, Lc]
    };
    let old_all = (cfg.num_iterations > 1).then(|| score_inner(&model.valid()));
    let ref_all = reference.map(score_inner);
    let micro = if cfg.micro_batch_size == 0 {
        n
    } else {
        cfg.micro_batch_size.min(n)
    };
    let norm = Normalizer {
        total_sequences: n,
        total_tokens: batch.tokens_in_loss,
        micro_batches: n.div_ceil(micro),
    };
    let adv = Tensor::<AB::InnerBackend, 1>::from_data(
        TensorData::new(advantages.iter().map(|&a| a as f32).collect::<Vec<_>>(), [n]),
        &device,
    );
    let mut total = UpdateStats {
        finite: true,
        entropy_coef: cfg.entropy_coef,
        ..Default::default()
    };
    let mut cfg = cfg.clone();
    let parallel = peer.count > 1;
    for _ in 0..cfg.num_iterations {
        let entropy_before = total.entropy_sum;
        let mut acc = GradAccum::default();
        // one worker sums straight into the totals (as before); several sum per iteration first
        let mut mine = UpdateStats {
            finite: true,
            ..Default::default()
        };
        let sink = if parallel { &mut mine } else { &mut total };
        for (i, start) in (0..n).step_by(micro).enumerate() {
            if i % peer.count != peer.id {
                continue;
            }
            let rows = start..start + micro.min(n - start);
            let m = micro_batch_loss(
                &model,
                batch,
                rows,
                &adv,
                old_all.as_ref(),
                ref_all.as_ref(),
                &cfg,
                &norm,
            );
            sink.entropy_sum += m.stats.entropy_sum;
            sink.cov_selected += m.stats.cov_selected;
            sink.kept_tokens += m.stats.kept_tokens;
            if !m.stats.finite {
                sink.finite = false;
                break;
            }
            sink.loss_sum += m.stats.loss_sum;
            sink.kl_sum += m.stats.kl_sum;
            sink.clipped_low += m.stats.clipped_low;
            sink.clipped_high += m.stats.clipped_high;
            acc.add(&model, &m.loss.backward());
        }
        if parallel {
            acc = acc.all_reduce(&model, peer.id as u32);
            total.add_reduced::<AB::InnerBackend>(mine, peer, &device);
        }
        total.grad_norm = acc.global_norm();
        if !total.finite || !total.grad_norm.is_finite() {
            total.finite = false;
            break;
        }
        model = opt.step(model, &acc, cfg.lr, clip_scale(total.grad_norm, cfg.max_grad_norm));
        if let Some(a) = &cfg.adaptive_entropy {
            // the bonus coefficient is −entropy_coef; TRL moves it after every optimizer step
            let mean_h = (total.entropy_sum - entropy_before) / batch.tokens_in_loss.max(1) as f64;
            cfg.entropy_coef = -a.next_coef(-cfg.entropy_coef, mean_h);
            total.entropy_coef = cfg.entropy_coef;
        }
    }
    (model, total)
}

impl UpdateStats {
    /// Adds this worker's sums of one iteration, summed over all workers first (one all-reduce of
    /// the measurements; a non-finite micro-batch on any worker makes the step non-finite).
    fn add_reduced<B: burn::tensor::backend::Backend>(&mut self, mine: UpdateStats, peer: Peer, device: &B::Device) {
        use burn::collective::{PeerId, ReduceOperation, all_reduce};
        let local = [
            mine.entropy_sum,
            mine.cov_selected,
            mine.kept_tokens,
            mine.loss_sum,
            mine.kl_sum,
            mine.clipped_low,
            mine.clipped_high,
            f64::from(u8::from(!mine.finite)),
        ];
        let t = Tensor::<B, 1>::from_data(TensorData::new(local.map(|x| x as f32).to_vec(), [local.len()]), device);
        let sum = all_reduce::<B>(
            PeerId::from(peer.id as u32),
            t.into_primitive().tensor(),
            ReduceOperation::Sum,
        )
        .unwrap_or_else(|e| panic!("all-reduce of update statistics failed: {e:?}"));
        let s = Tensor::<B, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(sum))
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .expect("f64");
        self.entropy_sum += s[0];
        self.cov_selected += s[1];
        self.kept_tokens += s[2];
        self.loss_sum += s[3];
        self.kl_sum += s[4];
        self.clipped_low += s[5];
        self.clipped_high += s[6];
        self.finite &= s[7] == 0.0;
    }
}
