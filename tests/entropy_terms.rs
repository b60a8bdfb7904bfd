//! The entropy terms' gradients reach the parameters: central finite differences of the loss
//! along its own autodiff gradient (directional derivative = |g|²), for EM-FT's token-entropy
//! loss at a first-layer matrix and at the embedding, and for the GRPO loss with the entropy
//! regulariser as a penalty and as a bonus (whose gradient must differ from plain GRPO's by
//! exactly `±coef·∇H̄`).

use burn::module::{AutodiffModule, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use entrl::backend::{Cpu, CpuTrain};
use entrl::config::{EntropySection, Regularizer};
use entrl::model::{ModelConfig, Transformer, weights};
use entrl::objectives::{LossType, Normalizer, PolicyLossConfig};
use entrl::rollout::{RolloutConfig, SamplingParams, generate};
use entrl::scoring::score_tokens;
use entrl::train::batch::{RlBatch, rl_batch};
use entrl::train::update::{UpdateConfig, micro_batch_loss};

struct Setup {
    cfg: ModelConfig,
    model: Transformer<CpuTrain>,
    batch: RlBatch<Cpu>,
    adv: Vec<f32>,
    /// Log-probs of the unperturbed model (the rollout policy: constants of the surrogate).
    old: Tensor<Cpu, 2>,
}

fn setup() -> Setup {
    let cfg = ModelConfig::tiny(32);
    let model = weights::build_model::<CpuTrain>(&cfg, weights::init_weights(&cfg, 11), &Default::default()).unwrap();
    let prompts: Vec<Vec<u32>> = vec![vec![1, 9, 10], vec![1, 11], vec![2, 12, 13, 14]];
    let rc = RolloutConfig {
        group_size: 2,
        max_new_tokens: 6,
        sampling: SamplingParams {
            top_logprobs: 0,
            ..Default::default()
        },
        eos_ids: vec![],
        seed: 5,
        first_prompt_index: 0,
        policy: entrl::rollout::DecodePolicy::default(),
    };
    let out = generate(&model.valid(), &prompts, &rc);
    let ps: Vec<&[u32]> = out.iter().map(|c| prompts[c.prompt_index].as_slice()).collect();
    let cs: Vec<&[u32]> = out.iter().map(|c| c.tokens.as_slice()).collect();
    let batch = rl_batch::<Cpu>(&ps, &cs, &vec![true; cs.len()], 1, &Default::default());
    let adv = vec![1.0, -1.0, 0.5, -0.5, 0.8, -0.8];
    let old = score_tokens(&model.valid(), batch.tokens.clone(), &batch.pad, 1.0, 64)
        .logprobs
        .narrow(1, batch.prompt_len - 1, batch.completion_len);
    Setup {
        cfg,
        model,
        batch,
        adv,
        old,
    }
}

/// `pg_weight · GRPO loss + coef · H̄` of `model` on the setup's batch, through the training
/// loop's own micro-batch loss (`pg_weight` 0 = zero advantages, as EM-FT's).
fn loss(s: &Setup, model: &Transformer<CpuTrain>, pg_weight: f64, coef: f64) -> Tensor<CpuTrain, 1> {
    let b = &s.batch;
    let n = s.adv.len();
    let cfg = UpdateConfig {
        loss: PolicyLossConfig {
            loss_type: LossType::Dapo,
            epsilon: 0.2,
            epsilon_high: 0.2,
            beta: 0.0,
            max_completion_length: 6,
            cov_control: Default::default(),
        },
        temperature: 1.0,
        num_iterations: 1,
        micro_batch_size: 0,
        max_grad_norm: 0.0,
        lr: 0.0,
        entropy_coef: coef,
        top_entropy_quantile: 1.0,
        adaptive_entropy: None,
        seed: 0,
    };
    let norm = Normalizer {
        total_sequences: n,
        total_tokens: b.tokens_in_loss,
        micro_batches: 1,
    };
    let adv: Vec<f32> = s.adv.iter().map(|&a| a * pg_weight as f32).collect();
    let adv = Tensor::from_data(TensorData::new(adv, [n]), &Default::default());
    micro_batch_loss(model, b, 0..n, &adv, Some(&s.old), None, &cfg, &norm).loss
}

fn grad_of(
    s: &Setup,
    pg_weight: f64,
    coef: f64,
    param: fn(&Transformer<CpuTrain>) -> &Param<Tensor<CpuTrain, 2>>,
) -> Vec<f32> {
    let l = loss(s, &s.model, pg_weight, coef);
    let grads = l.backward();
    let g = param(&s.model)
        .val()
        .grad(&grads)
        .expect("the parameter gets a gradient");
    g.into_data().to_vec::<f32>().unwrap()
}

fn loss_value(s: &Setup, name: &str, delta: &[f32], scale: f32, pg_weight: f64, coef: f64) -> f64 {
    let mut w = weights::model_weights(&s.model.valid());
    let t = w.get_mut(name).expect("weight name");
    for (x, d) in t.data.iter_mut().zip(delta) {
        *x += scale * d;
    }
    let m = weights::build_model::<CpuTrain>(&s.cfg, w, &Default::default()).unwrap();
    loss(s, &m, pg_weight, coef).into_scalar() as f64
}

/// Central difference of the loss along g (the autodiff gradient of `name`) against |g|².
fn check_directional(
    s: &Setup,
    name: &str,
    param: fn(&Transformer<CpuTrain>) -> &Param<Tensor<CpuTrain, 2>>,
    pg_weight: f64,
    coef: f64,
) -> (f64, f64) {
    let g = grad_of(s, pg_weight, coef, param);
    let g2: f64 = g.iter().map(|&x| (x as f64).powi(2)).sum();
    assert!(g2 > 1e-12, "{name}: zero gradient");
    let eps = (1e-2 / g2) as f32; // moves the loss by about 1e-2
    let fd = (loss_value(s, name, &g, eps, pg_weight, coef) - loss_value(s, name, &g, -eps, pg_weight, coef))
        / (2.0 * eps as f64);
    let rel = (fd - g2).abs() / g2;
    assert!(
        rel < 0.02,
        "{name} (pg {pg_weight}, coef {coef}): finite difference {fd:.6e} vs autodiff |g|² {g2:.6e} (rel {rel:.2e})"
    );
    (fd, g2)
}

type Getter = fn(&Transformer<CpuTrain>) -> &Param<Tensor<CpuTrain, 2>>;

fn up0<B: Backend>(m: &Transformer<B>) -> &Param<Tensor<B, 2>> {
    &m.layers[0].up_proj
}
fn embed<B: Backend>(m: &Transformer<B>) -> &Param<Tensor<B, 2>> {
    &m.embed_tokens
}

#[test]
fn em_ft_entropy_gradient_reaches_first_layer_and_embedding() {
    let s = setup();
    for (name, p) in [
        ("model.layers.0.mlp.up_proj.weight", up0::<CpuTrain> as Getter),
        ("model.embed_tokens.weight", embed::<CpuTrain> as Getter),
    ] {
        let (fd, g2) = check_directional(&s, name, p, 0.0, 1.0);
        println!("EM-FT H̄, {name}: finite difference {fd:.6e}, autodiff {g2:.6e}");
    }
}

#[test]
fn regulariser_penalty_and_bonus_add_their_signed_gradient() {
    let s = setup();
    let name = "model.layers.0.mlp.up_proj.weight";
    let g_pg = grad_of(&s, 1.0, 0.0, up0);
    let g_h = grad_of(&s, 0.0, 1.0, up0);
    for reg in [Regularizer::Penalty, Regularizer::Bonus] {
        let e = EntropySection {
            regularizer: reg,
            coef: 0.5,
            ..Default::default()
        };
        let c = e.signed_coef();
        assert_eq!(c, if reg == Regularizer::Penalty { 0.5 } else { -0.5 });
        let (fd, g2) = check_directional(&s, name, up0, 1.0, c);
        println!("GRPO {c:+} H̄ ({reg:?}), {name}: finite difference {fd:.6e}, autodiff {g2:.6e}");
        let g = grad_of(&s, 1.0, c, up0);
        let scale = g_h.iter().map(|x| x.abs()).fold(0f32, f32::max);
        for ((a, p), h) in g.iter().zip(&g_pg).zip(&g_h) {
            assert!((a - (p + c as f32 * h)).abs() <= 1e-4 * scale, "∇(pg + cH) ≠ ∇pg + c∇H");
        }
    }
}
