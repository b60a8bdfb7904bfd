//! AdamW, gradient accumulation, global-norm clipping and the learning-rate schedule.
//!
//! Written here rather than taken from burn-optim for three reasons: PyTorch's clipping is one
//! *global* norm over all parameters (burn clips per parameter); the grad norm is a metric users
//! expect; and the moments are saved by Hugging Face parameter name, exactly, for bit-exact resume.
//! Semantics follow `torch.optim.AdamW` (decoupled weight decay, bias-corrected moments) and are
//! tested against it (`scripts/oracle/adamw_golden.py`).

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::weights::{NamedTensor, Weights};

/// AdamW hyper-parameters (PyTorch names and defaults, except lr).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε added to √v̂.
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices only (not norms or biases).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Summed gradients of several micro-batches, flattened per parameter.
pub struct GradAccum<B: Backend> {
    grads: HashMap<ParamId, Tensor<B, 1>>,
}

impl<B: Backend> Default for GradAccum<B> {
    fn default() -> Self {
        Self { grads: HashMap::new() }
    }
}

struct Collect<'a, AB: AutodiffBackend> {
    grads: &'a AB::Gradients,
    into: &'a mut HashMap<ParamId, Tensor<AB::InnerBackend, 1>>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Collect<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            let n = g.shape().num_elements();
            let g = g.reshape([n]);
            let sum = match self.into.remove(&param.id) {
                Some(acc) => acc + g,
                None => g,
            };
            self.into.insert(param.id, sum);
        }
    }
}

impl<B: Backend> GradAccum<B> {
    /// Adds the gradients of one backward pass.
    pub fn add<AB: AutodiffBackend<InnerBackend = B>, M: AutodiffModule<AB>>(
        &mut self,
        model: &M,
        grads: &AB::Gradients,
    ) {
        model.visit(&mut Collect::<AB> {
            grads,
            into: &mut self.grads,
        });
    }

    /// ‖g‖₂ over all parameters together.
    pub fn global_norm(&self) -> f64 {
        self.grads
            .values()
            .map(|g| g.clone().square().sum().into_scalar().elem::<f64>())
            .sum::<f64>()
            .sqrt()
    }
}

/// Every float parameter's id, element count and device (in parameter order).
struct ParamShapes<'a, B: Backend> {
    into: &'a mut Vec<(ParamId, usize, B::Device)>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for ParamShapes<'_, AB::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let t = param.val();
        self.into.push((param.id, t.shape().num_elements(), t.inner().device()));
    }
}

impl<B: Backend> GradAccum<B> {
    /// Sums each parameter's gradient over the workers of a burn-collective group (burn's own
    /// engine: a local server thread, any backend). Every worker calls this with the same model
    /// layout; parameters are reduced in id order, and one a worker has no gradient for (it ran
    /// no micro-batch) counts as zeros.
    pub fn all_reduce<AB: AutodiffBackend<InnerBackend = B>, M: AutodiffModule<AB>>(
        mut self,
        model: &M,
        peer: u32,
    ) -> Self {
        use burn::collective::{PeerId, ReduceOperation, all_reduce};
        let mut params = Vec::new();
        model.visit(&mut ParamShapes::<B> { into: &mut params });
        params.sort_by_key(|(id, _, _)| id.val());
        for (id, n, device) in params {
            let g = self.grads.remove(&id).unwrap_or_else(|| Tensor::zeros([n], &device));
            let sum = all_reduce::<B>(PeerId::from(peer), g.into_primitive().tensor(), ReduceOperation::Sum)
                .unwrap_or_else(|e| panic!("all-reduce of gradients failed: {e:?}"));
            self.grads
                .insert(id, Tensor::from_primitive(burn::tensor::TensorPrimitive::Float(sum)));
        }
        self
    }
}

/// AdamW state: step count and the two moments per parameter.
#[derive(Clone)]
pub struct AdamW<B: Backend> {
    /// Hyper-parameters.
    pub cfg: AdamWConfig,
    /// Optimizer steps taken.
    pub step: u64,
    moments: HashMap<ParamId, (Tensor<B, 1>, Tensor<B, 1>)>,
}

struct Update<'a, B: Backend> {
    opt: &'a mut AdamW<B>,
    grads: &'a GradAccum<B>,
    lr: f64,
    grad_scale: f64,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for Update<'_, AB::InnerBackend> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(g) = self.grads.grads.get(&id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = tensor.shape();
        let n = shape.num_elements();
        let c = &self.opt.cfg;
        let t = self.opt.step as i32; // already incremented for this step
        let p = tensor.inner().reshape([n]);
        let g = g.clone() * self.grad_scale;
        // decoupled weight decay on matrices only
        let p = if D >= 2 && c.weight_decay > 0.0 {
            p.clone() - p * (self.lr * c.weight_decay)
        } else {
            p
        };
        let (m, v) = match self.opt.moments.remove(&id) {
            Some(mv) => mv,
            None => (g.zeros_like(), g.zeros_like()),
        };
        let m = m * c.beta1 + g.clone() * (1.0 - c.beta1);
        let v = v * c.beta2 + g.square() * (1.0 - c.beta2);
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        // p ← p − lr·(m/bc1) / (√(v/bc2) + ε), as torch.optim.AdamW
        let denom = (v.clone() / bc2).sqrt() + c.eps;
        let p = p - (m.clone() / denom) * (self.lr / bc1);
        self.opt.moments.insert(id, (m, v));
        let new = Tensor::<AB, D>::from_inner(p.reshape(shape)).require_grad();
        Param::from_mapped_value(id, new, mapper)
    }
}

impl<B: Backend> AdamW<B> {
    /// A copy with the moments on `device` (a data-parallel worker's own state).
    pub fn to_device(&self, device: &B::Device) -> Self {
        let moments = self
            .moments
            .iter()
            .map(|(id, (m, v))| (*id, (m.clone().to_device(device), v.clone().to_device(device))))
            .collect();
        Self {
            cfg: self.cfg.clone(),
            step: self.step,
            moments,
        }
    }

    /// Fresh optimizer.
    pub fn new(cfg: AdamWConfig) -> Self {
        Self {
            cfg,
            step: 0,
            moments: HashMap::new(),
        }
    }

    /// One update with learning rate `lr`, gradients multiplied by `grad_scale` (clipping).
    pub fn step<AB: AutodiffBackend<InnerBackend = B>, M: AutodiffModule<AB>>(
        &mut self,
        model: M,
        grads: &GradAccum<B>,
        lr: f64,
        grad_scale: f64,
    ) -> M {
        self.step += 1;
        model.map(&mut Update {
            opt: self,
            grads,
            lr,
            grad_scale,
        })
    }

    /// Moments as named tensors (`exp_avg.<param>`, `exp_avg_sq.<param>`), for checkpoints.
    pub fn state_weights(&self, names: &HashMap<ParamId, String>) -> Weights {
        let mut w = Weights::new();
        for (id, (m, v)) in &self.moments {
            let name = &names[id];
            for (prefix, t) in [("exp_avg", m), ("exp_avg_sq", v)] {
                let data = t.clone().into_data().convert::<f32>().to_vec::<f32>().expect("f32");
                w.insert(
                    format!("{prefix}.{name}"),
                    NamedTensor {
                        shape: vec![data.len()],
                        data,
                    },
                );
            }
        }
        w
    }

    /// Restores moments saved by [`AdamW::state_weights`]; `step` is restored by the caller.
    pub fn load_state(
        &mut self,
        w: &Weights,
        names: &HashMap<ParamId, String>,
        device: &B::Device,
    ) -> Result<(), String> {
        self.moments.clear();
        for (id, name) in names {
            let get = |k: String| w.get(&k).ok_or_else(|| format!("optimizer state lacks '{k}'"));
            let (Ok(m), Ok(v)) = (get(format!("exp_avg.{name}")), get(format!("exp_avg_sq.{name}"))) else {
                continue; // parameter never updated (no gradient yet)
            };
            let t =
                |x: &NamedTensor| Tensor::<B, 1>::from_data(TensorData::new(x.data.clone(), [x.data.len()]), device);
            self.moments.insert(*id, (t(m), t(v)));
        }
        Ok(())
    }
}

/// PyTorch `clip_grad_norm_` coefficient: `min(1, max_norm / (norm + 1e-6))`; no clipping when
/// `max_norm <= 0`.
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm <= 0.0 {
        1.0
    } else {
        (max_norm / (norm + 1e-6)).min(1.0)
    }
}

/// Linear warm-up from 0 to `lr` over `warmup` steps, then cosine decay to `lr·min_ratio` at
/// `total`. `step` counts from 0; the first update uses `lr/warmup` (never lr = 0).
pub fn lr_at(step: u64, lr: f64, warmup: u64, total: u64, min_ratio: f64) -> f64 {
    if step < warmup {
        return lr * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    lr * (min_ratio + (1.0 - min_ratio) * cos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((lr_at(0, 1.0, 4, 104, 0.1) - 0.25).abs() < 1e-12);
        assert!((lr_at(3, 1.0, 4, 104, 0.1) - 1.0).abs() < 1e-12);
        assert!((lr_at(4, 1.0, 4, 104, 0.1) - 1.0).abs() < 1e-12);
        assert!((lr_at(54, 1.0, 4, 104, 0.1) - 0.55).abs() < 1e-12);
        assert!((lr_at(104, 1.0, 4, 104, 0.1) - 0.1).abs() < 1e-12);
        assert!((lr_at(500, 1.0, 4, 104, 0.1) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn clip_scale_matches_torch() {
        assert_eq!(clip_scale(0.5, 1.0), 1.0);
        assert!((clip_scale(4.0, 1.0) - 1.0 / (4.0 + 1e-6)).abs() < 1e-15);
        assert_eq!(clip_scale(4.0, 0.0), 1.0);
    }
}
