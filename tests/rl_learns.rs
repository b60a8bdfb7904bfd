//! The RL update actually climbs the reward: on a random tiny model, GRPO steps through the
//! training loop's own update (`entrl::train::update::policy_update`: autodiff scoring pass,
//! clipped loss, accumulation, global-norm clip, AdamW) raise the frequency of a rewarded token far
//! above chance.

use burn::module::AutodiffModule;
use entrl::backend::{Cpu, CpuTrain};
use entrl::objectives::{AdvantageEstimator, LossType, PolicyLossConfig, ScaleRewards, advantages};
use entrl::rollout::{RolloutConfig, SamplingParams, generate};
use entrl::train::batch::rl_batch;
use entrl::train::optim::{AdamW, AdamWConfig};
use entrl::train::update::{UpdateConfig, policy_update};

const TARGET: u32 = 5;

#[test]
fn grpo_raises_a_toy_reward() {
    let device = Default::default();
    let cfg0 = entrl::model::ModelConfig::tiny(32);
    let mut model =
        entrl::model::weights::build_model::<CpuTrain>(&cfg0, entrl::model::weights::init_weights(&cfg0, 3), &device)
            .unwrap();
    let prompts: Vec<Vec<u32>> = vec![vec![1, 9, 10], vec![1, 11], vec![1, 12, 13, 14]];
    let g = 8;
    let mut opt = AdamW::<Cpu>::new(AdamWConfig::default());
    let pl = PolicyLossConfig {
        loss_type: LossType::Dapo,
        epsilon: 0.2,
        epsilon_high: 0.28,
        beta: 0.0,
        max_completion_length: 8,
        cov_control: Default::default(),
    };
    let update = UpdateConfig {
        loss: pl,
        temperature: 1.0,
        num_iterations: 1,
        micro_batch_size: 0,
        max_grad_norm: 1.0,
        lr: 3e-3,
        entropy_coef: 0.0,
        top_entropy_quantile: 1.0,
        adaptive_entropy: None,
        seed: 0,
    };
    let mut freq = vec![];
    for step in 0..40u64 {
        let cfg = RolloutConfig {
            group_size: g,
            max_new_tokens: 8,
            sampling: SamplingParams {
                top_logprobs: 0,
                ..Default::default()
            },
            eos_ids: vec![],
            seed: step,
            first_prompt_index: 0,
            policy: entrl::rollout::DecodePolicy::default(),
        };
        let out = generate(&model.valid(), &prompts, &cfg);
        let rewards: Vec<f64> = out
            .iter()
            .map(|c| c.tokens.iter().filter(|&&t| t == TARGET).count() as f64 / c.tokens.len() as f64)
            .collect();
        freq.push(rewards.iter().sum::<f64>() / rewards.len() as f64);
        let groups = advantages::uniform_groups(rewards.len(), g);
        let adv = advantages::compute(AdvantageEstimator::Grpo, &rewards, &groups, ScaleRewards::Group, 1e-4);
        let ps: Vec<&[u32]> = out.iter().map(|c| prompts[c.prompt_index].as_slice()).collect();
        let cs: Vec<&[u32]> = out.iter().map(|c| c.tokens.as_slice()).collect();
        let b = rl_batch::<Cpu>(&ps, &cs, &vec![true; cs.len()], 1, &device);
        let (updated, stats) = policy_update(model, &mut opt, &b, &adv, None, &update);
        assert!(stats.finite, "step {step}: non-finite update");
        model = updated;
    }
    let first: f64 = freq[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = freq[35..].iter().sum::<f64>() / 5.0;
    println!("frequency of the rewarded token: first 5 steps {first:.3}, last 5 steps {last:.3}");
    assert!(
        last > first + 0.2,
        "GRPO did not climb the toy reward: {first:.3} -> {last:.3}"
    );
}
