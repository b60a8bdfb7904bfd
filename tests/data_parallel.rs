//! Data parallelism on burn's collective engine, on the CPU: the same global batch updated by 1
//! worker and by several (two, and five — more workers than micro-batches leaves one idle) gives
//! the same weights and the same measurements, for two KL-regularised iterations, twice in a row
//! (the collective is left and joined again between updates). Both workers share the one CPU
//! device here, as two workers would share one GPU in a smoke test. A short SFT + EM-RL run
//! (label-free rewards: every update has a gradient) logs the same metrics on 2 workers as on 1.

use std::sync::Mutex;

use burn::module::AutodiffModule;
use entrl::backend::{Cpu, CpuTrain};
use entrl::model::{ModelConfig, Transformer, weights};
use entrl::objectives::{LossType, PolicyLossConfig};
use entrl::train::batch::{RlBatch, rl_batch};
use entrl::train::optim::{AdamW, AdamWConfig};
use entrl::train::parallel::update_on_workers;
use entrl::train::update::{UpdateConfig, UpdateStats};
use entrl_tests::{fresh_tmp, metric_lines, tiny_run};

/// burn-collective's local server is one per backend and process: the tests take turns.
static COLLECTIVE: Mutex<()> = Mutex::new(());

fn batch() -> RlBatch<Cpu> {
    let prompts: [&[u32]; 4] = [&[1, 9, 10], &[2, 12, 13, 14, 15], &[1, 11], &[3, 4]];
    let comps: [&[u32]; 12] = [
        &[4, 5, 6],
        &[7],
        &[8, 9, 10, 11, 12, 13],
        &[3, 3],
        &[20, 21, 22, 23],
        &[30, 31],
        &[5, 5, 5, 5],
        &[6],
        &[7, 8],
        &[9, 10, 11],
        &[12],
        &[13, 14, 15, 16, 17],
    ];
    let ps: Vec<&[u32]> = (0..12).map(|i| prompts[i / 3]).collect();
    rl_batch::<Cpu>(&ps, &comps, &[true; 12], 1, &Default::default())
}

fn config() -> UpdateConfig {
    UpdateConfig {
        loss: PolicyLossConfig {
            loss_type: LossType::Bnpo,
            epsilon: 0.2,
            epsilon_high: 0.28,
            beta: 0.04,
            max_completion_length: 8,
            cov_control: Default::default(),
        },
        temperature: 1.0,
        num_iterations: 2,
        micro_batch_size: 3, // 4 micro-batches
        max_grad_norm: 1.0,
        lr: 1e-2,
        entropy_coef: 0.0,
        top_entropy_quantile: 1.0,
        adaptive_entropy: None,
        seed: 0,
    }
}

/// Two updates of a fresh model on `workers` workers: final weights and both updates' statistics.
fn run(workers: usize) -> (weights::Weights, Vec<UpdateStats>) {
    let cfg0 = ModelConfig::tiny(32);
    let device = Default::default();
    let mut model: Transformer<CpuTrain> =
        weights::build_model(&cfg0, weights::init_weights(&cfg0, 3), &device).unwrap();
    let reference = model.valid();
    let mut opt = AdamW::<Cpu>::new(AdamWConfig::default());
    let (b, cfg) = (batch(), config());
    let adv = [0.9, -0.4, -0.5, 1.2, -1.2, 0.0, 0.3, 0.3, -0.6, -1.0, 0.5, 0.5];
    let devices = vec![device; workers];
    let mut stats = vec![];
    for _ in 0..2 {
        let (m, s) = update_on_workers(model, &mut opt, &b, &adv, Some(&reference), &cfg, &devices);
        assert!(s.finite);
        (model, stats) = (m, [stats, vec![s]].concat());
    }
    (weights::model_weights(&model.valid()), stats)
}

fn max_diff(a: &weights::Weights, b: &weights::Weights) -> f32 {
    a.iter()
        .map(|(k, t)| {
            t.data
                .iter()
                .zip(&b[k].data)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        })
        .fold(0.0, f32::max)
}

#[test]
fn several_workers_make_the_same_update_as_one() {
    let _turn = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let (w1, s1) = run(1);
    let cfg0 = ModelConfig::tiny(32);
    let start = weights::init_weights(&cfg0, 3);
    let moved = max_diff(&w1, &start);
    for workers in [2, 5] {
        let (w, s) = run(workers);
        let d = max_diff(&w1, &w);
        println!("{workers} workers: max |Δw| vs 1 worker {d:.2e} (the updates moved weights by {moved:.2e})");
        assert!(d < 5e-5 && moved > 1e-2, "{workers} workers: weights differ by {d:.2e}");
        for (a, b) in s1.iter().zip(&s) {
            for (name, x, y) in [
                ("loss", a.loss_sum, b.loss_sum),
                ("entropy", a.entropy_sum, b.entropy_sum),
                ("kl", a.kl_sum, b.kl_sum),
                (
                    "clipped",
                    a.clipped_low + a.clipped_high,
                    b.clipped_low + b.clipped_high,
                ),
                ("kept", a.kept_tokens, b.kept_tokens),
                ("grad norm", a.grad_norm, b.grad_norm),
            ] {
                assert!(
                    (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                    "{workers} workers: {name} {x} vs {y}"
                );
            }
        }
    }
}

/// A short SFT + EM-RL run on `workers_per_device` workers; its metric lines.
fn train_run(workers: usize) -> Vec<serde_json::Value> {
    let dir = fresh_tmp("dp", &format!("w{workers}"));
    let rest = "[data]\ntrain = { kind = \"arithmetic\", digits = 1, operands = 2 }\n\
         [sft]\nsteps = 30\nbatch_size = 32\nlearning_rate = 3e-3\n\
         [rl]\nsteps = 2\nprompts_per_step = 4\nnum_generations = 4\nmax_completion_length = 12\n\
         micro_batch_size = 4\nlearning_rate = 1e-4\n\
         [entropy]\nobjective = \"em_rl_token\"\n\
         [eval]\nnum_problems = 16\n[checkpoint]\nsave_every = 0\nkeep_last = 1\n";
    let mut run = tiny_run(&dir, 5, rest, "data-parallel-test");
    run.workers_per_device = workers;
    entrl::train::train::<CpuTrain>(run, false, false, &Default::default()).unwrap();
    metric_lines(&dir)
}

#[test]
fn a_two_worker_run_logs_the_same_metrics_as_one_worker() {
    let _turn = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let (one, two) = (train_run(1), train_run(2));
    assert_eq!(one.len(), two.len());
    let mut compared = 0;
    for (a, b) in one.iter().zip(&two) {
        for (k, x) in a.as_object().unwrap() {
            if k.starts_with("time/") || k.starts_with("perf/") {
                continue;
            }
            match (x.as_f64(), b[k].as_f64()) {
                (Some(x), Some(y)) => {
                    assert!((x - y).abs() <= 1e-3 * x.abs().max(1e-2), "{k}: {x} vs {y}");
                    compared += usize::from(a["phase"] == "rl");
                }
                _ => assert_eq!(x, &b[k], "{k}"),
            }
        }
    }
    assert!(compared > 20, "RL metrics compared: {compared}");
    let moved = two
        .iter()
        .filter(|l| l["phase"] == "rl")
        .all(|l| l["grad_norm"].as_f64() > Some(0.0));
    assert!(moved, "the RL updates had gradients (EM-RL's label-free rewards)");
}
