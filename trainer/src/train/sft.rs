//! One supervised warm-up step: cross-entropy on worked solutions.

use crate::model::transformer::Precision;
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use serde_json::{Map, json};

use super::StepOutcome;
use super::batch::sft_batch;
use crate::model::Transformer;
use crate::objectives::sft::sft_loss;
use crate::optim::{AdamW, GradAccum, clip_scale};
use crate::plan::RunPlan;
use crate::scoring::score_logprobs;

/// Runs step `phase_step` of the warm-up on problems from `cursor`: the new model, the advanced
/// cursor, the step's metrics, and `finite = false` when the loss or gradient was not finite (the
/// update is skipped).
pub fn sft_step<AB: AutodiffBackend>(
    plan: &RunPlan,
    model: Transformer<AB>,
    opt: &mut AdamW<AB::InnerBackend>,
    phase_step: u64,
    cursor: u64,
    device: &AB::Device,
) -> StepOutcome<AB> {
    let (tok, prompts) = (&plan.model.tok, &plan.model.prompts);
    let rows: Vec<(Vec<u32>, Vec<u32>)> = (0..plan.file.sft.batch_size as u64)
        .map(|k| {
            let p = plan.train.get(cursor + k);
            (
                tok.encode(&prompts.problem_prompt(&p)),
                tok.encode(&prompts.target(&p.question, &p.solution)),
            )
        })
        .collect();
    let (tokens, mask, n_tok) = sft_batch::<AB>(&rows, plan.decode.length_multiple(), device);
    let b = rows.len();
    let low; // the same parameters, computing in `precision` (f32: the model itself)
    let policy = match plan.file.precision {
        Precision::F32 => &model,
        p => {
            low = model.clone().with_precision(p);
            &low
        }
    };
    let logprobs = score_logprobs(policy, tokens, &vec![0; b], 1.0, 64);
    let loss = sft_loss(logprobs, mask, n_tok);
    let loss_v = loss.clone().into_scalar().elem::<f64>();
    let lr = plan.sft.lr_at(phase_step);
    let mut m = Map::new();
    m.insert("loss".into(), json!(loss_v));
    m.insert("sft/tokens".into(), json!(n_tok));
    m.insert("lr".into(), json!(lr));
    let outcome = |model, metrics, finite| StepOutcome {
        model,
        cursor: cursor + b as u64,
        metrics,
        finite,
        records: vec![],
        entropy_coef: None,
    };
    if !loss_v.is_finite() {
        return outcome(model, m, false);
    }
    let grads = loss.backward();
    let mut acc = GradAccum::default();
    acc.add(&model, &grads);
    let norm = acc.global_norm();
    m.insert("grad_norm".into(), json!(norm));
    if !norm.is_finite() {
        return outcome(model, m, false);
    }
    let model = opt.step(model, &acc, lr, clip_scale(norm, plan.sft.max_grad_norm));
    outcome(model, m, true)
}
