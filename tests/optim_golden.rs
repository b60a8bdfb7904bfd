//! AdamW + global-norm clipping against torch.optim.AdamW + clip_grad_norm_
//! (`scripts/oracle/adamw_golden.py`), four steps, f32 vs the float64 reference.

use burn::backend::Autodiff;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use entrl::backend::Cpu;
use entrl::train::optim::{AdamW, AdamWConfig, GradAccum, clip_scale};
use entrl_tests::root;
use serde::Deserialize;

type AD = Autodiff<Cpu>;

#[derive(Module, Debug)]
struct Toy<B: Backend> {
    w: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 1>>,
}

#[derive(Deserialize)]
struct Fx {
    init: Init,
    steps: Vec<Step>,
}
#[derive(Deserialize)]
struct Init {
    w: Vec<Vec<f64>>,
    b: Vec<f64>,
}
#[derive(Deserialize)]
struct Step {
    lr: f64,
    grad_w: Vec<Vec<f64>>,
    grad_b: Vec<f64>,
    norm: f64,
    w: Vec<Vec<f64>>,
    b: Vec<f64>,
}

fn m2<B: Backend>(x: &[Vec<f64>]) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(
            x.iter().flatten().map(|&v| v as f32).collect::<Vec<_>>(),
            [x.len(), x[0].len()],
        ),
        &Default::default(),
    )
}
fn v1<B: Backend>(x: &[f64]) -> Tensor<B, 1> {
    Tensor::from_data(
        TensorData::new(x.iter().map(|&v| v as f32).collect::<Vec<_>>(), [x.len()]),
        &Default::default(),
    )
}

#[test]
fn adamw_with_clipping_matches_torch() {
    let fx: Fx =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/fixtures/adamw_golden_torch.json")).unwrap())
            .unwrap();
    let mut model = Toy::<AD> {
        w: Param::from_tensor(m2(&fx.init.w)),
        b: Param::from_tensor(v1(&fx.init.b)),
    };
    let mut opt = AdamW::<Cpu>::new(AdamWConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
    });
    for (k, s) in fx.steps.iter().enumerate() {
        // loss = Σ w·Gw + Σ b·Gb, so the gradient is exactly (Gw, Gb)
        let loss = (model.w.val() * m2::<AD>(&s.grad_w)).sum() + (model.b.val() * v1::<AD>(&s.grad_b)).sum();
        let grads = loss.backward();
        let mut acc = GradAccum::<Cpu>::default();
        acc.add(&model, &grads);
        let norm = acc.global_norm();
        assert!(
            (norm - s.norm).abs() < 1e-4 * s.norm,
            "step {k}: norm {norm} vs {}",
            s.norm
        );
        model = opt.step(model, &acc, s.lr, clip_scale(norm, 1.0));
        let w = model.w.val().into_data().to_vec::<f32>().unwrap();
        let b = model.b.val().into_data().to_vec::<f32>().unwrap();
        let dw = w
            .iter()
            .zip(s.w.iter().flatten())
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        let db = b
            .iter()
            .zip(&s.b)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(dw < 1e-6 && db < 1e-6, "step {k}: |Δw| {dw}, |Δb| {db}");
    }
}
