//! Clip-Cov, KL-Cov, the adaptive entropy coefficient and the `entropy/cov_logp_adv` diagnostic
//! against an independent torch implementation of verl's and TRL's definitions
//! (`scripts/oracle/cov_golden.py` → `tests/fixtures/cov_golden.json`): the selected tokens
//! exactly, the token-mean loss and d loss / d logp to 1e-5 (f32 tensors here).

use burn::backend::Autodiff;
use burn::tensor::{Tensor, TensorData};
use entrl::backend::Cpu;
use entrl::objectives::clip_cov::ClipCov;
use entrl::objectives::cov::{CovControl, TokenView, mean_covariance};
use entrl::objectives::entropy::AdaptiveEntropy;
use entrl::objectives::kl_cov::KlCov;
use entrl::objectives::policy_loss::{CovLoss, policy_loss};
use entrl::objectives::{LossType, Normalizer, PolicyLossConfig};
use serde_json::Value;

type AD = Autodiff<Cpu>;

fn fixture() -> Value {
    let p = entrl_tests::root().join("tests/fixtures/cov_golden.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn flat(v: &Value) -> (Vec<f32>, usize) {
    let rows = v.as_array().unwrap();
    let cols = rows[0].as_array().unwrap().len();
    let x = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32))
        .collect();
    (x, cols)
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap()
}

#[test]
fn clip_cov_and_kl_cov_match_the_reference() {
    let fx = fixture();
    let mut worst = 0f64;
    for (i, c) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let ((logp, t), (old, _), (mask_f, _)) = (flat(&c["logp"]), flat(&c["old"]), flat(&c["mask"]));
        let adv: Vec<f32> = c["adv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let b = adv.len();
        let mask: Vec<bool> = mask_f.iter().map(|&m| m > 0.5).collect();
        let view = TokenView {
            logp: &logp,
            old: &old,
            adv: &adv,
            mask: &mask,
            cols: t,
        };
        let control = match c["kind"].as_str().unwrap() {
            "clip_cov" => CovControl::ClipCov(ClipCov {
                ratio: f(c, "ratio"),
                lb: f(c, "lb"),
                ub: f(c, "ub"),
            }),
            _ => CovControl::KlCov(KlCov {
                ratio: f(c, "ratio"),
                coef: f(c, "coef"),
            }),
        };
        let (lo, hi) = (f(c, "eps_low"), f(c, "eps_high"));
        let terms = control.terms(&view, (1.0 - lo, 1.0 + hi), 7);
        let selected: Vec<usize> = match (&terms.keep, &terms.penalty) {
            (Some(k), _) => (0..k.len()).filter(|&j| k[j] == 0.0).collect(),
            (_, Some(p)) => (0..p.len()).filter(|&j| p[j] != 0.0).collect(),
            _ => vec![],
        };
        let want: Vec<usize> = c["selected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(selected, want, "case {i} {}: selected tokens", c["kind"]);
        // the loss and its gradient through the tensor path
        let t2 = |x: &[f32]| Tensor::<AD, 2>::from_data(TensorData::new(x.to_vec(), [b, t]), &Default::default());
        let logps = t2(&logp).require_grad();
        let cfg = PolicyLossConfig {
            loss_type: LossType::Bnpo,
            epsilon: lo,
            epsilon_high: hi,
            beta: 0.0,
            max_completion_length: t,
            cov_control: control,
        };
        let norm = Normalizer {
            total_sequences: b,
            total_tokens: mask.iter().filter(|&&m| m).count(),
            micro_batches: 1,
        };
        let out = policy_loss(
            logps.clone(),
            t2(&old),
            None,
            t2(&mask_f),
            terms.keep.as_deref().map(t2),
            Tensor::from_data(TensorData::new(adv.clone(), [b]), &Default::default()),
            &cfg,
            &norm,
            CovLoss {
                penalty: terms.penalty.as_deref().map(t2),
                unclipped: terms.unclipped,
            },
        );
        let loss = out.loss.clone().into_scalar() as f64;
        let grads = out.loss.backward();
        let g = logps.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        let (want_g, _) = flat(&c["grad"]);
        worst = worst.max((loss - f(c, "loss")).abs());
        assert!(
            (loss - f(c, "loss")).abs() < 1e-5,
            "case {i}: loss {loss} vs {}",
            f(c, "loss")
        );
        for (j, (x, y)) in g.iter().zip(&want_g).enumerate() {
            worst = worst.max((x - y).abs() as f64);
            assert!((x - y).abs() < 1e-5, "case {i} {}: d/dlogp[{j}] {x} vs {y}", c["kind"]);
        }
        let cov = mean_covariance(&view);
        assert!((cov - f(c, "cov_logp_adv")).abs() < 1e-5, "case {i}: cov {cov}");
    }
    println!("max |Δ| (loss, gradient) = {worst:.2e}");
}

#[test]
fn adaptive_coefficient_follows_the_reference() {
    for a in fixture()["adaptive"].as_array().unwrap() {
        let rule = AdaptiveEntropy {
            target: f(a, "target"),
            delta: f(a, "delta"),
            min: f(a, "min"),
            max: f(a, "max"),
        };
        let mut coef = f(a, "start");
        for (h, want) in a["entropies"]
            .as_array()
            .unwrap()
            .iter()
            .zip(a["coefs"].as_array().unwrap())
        {
            coef = rule.next_coef(coef, h.as_f64().unwrap());
            assert!((coef - want.as_f64().unwrap()).abs() < 1e-12);
        }
    }
}

/// Clip-Cov's random pick when there are more candidates than its budget: exactly the budget,
/// all from the candidates, and a pure function of the seed.
#[test]
fn clip_cov_random_pick_respects_the_budget() {
    let (b, t) = (8, 16);
    let logp: Vec<f32> = (0..b * t).map(|i| -((i * 37 % 29) as f32) / 6.0).collect();
    let adv: Vec<f32> = (0..b).map(|i| if i % 2 == 0 { 2.5 } else { -2.5 }).collect();
    let mask = vec![true; b * t];
    let v = TokenView {
        logp: &logp,
        old: &logp,
        adv: &adv,
        mask: &mask,
        cols: t,
    };
    let c = ClipCov {
        ratio: 0.05,
        lb: 0.0,
        ub: 100.0,
    };
    let cov = entrl::objectives::cov::token_covariance(&v);
    let candidates = cov.iter().filter(|x| x.is_some_and(|x| x > 0.0)).count();
    let budget = (0.05 * (b * t) as f64) as usize;
    assert!(candidates > budget, "{candidates} candidates");
    let pick = |seed| c.terms(&v, (0.8, 1.28), seed).keep.unwrap();
    let a = pick(1);
    let dropped: Vec<usize> = (0..a.len()).filter(|&i| a[i] == 0.0).collect();
    assert_eq!(dropped.len(), budget);
    assert!(dropped.iter().all(|&i| cov[i].unwrap() > 0.0));
    assert_eq!(a, pick(1));
    assert_ne!(a, pick(2));
}
