//! The GPU's decode policy, checked on the CPU: fixed shapes (rows kept, finished rows masked,
//! bucketed lengths) and the device sampler (Gumbel-max with counter-based noise, statistics on
//! the device) against the CPU's shrinking, host-sampled loop and a from-scratch forward.

use burn::tensor::{Int, Tensor, TensorData};
use entrl::backend::Cpu;
use entrl::model::{self, Transformer};
use entrl::rollout::device_step::{device_step, gumbel, noise_key, noise_uniform, top_ids};
use entrl::rollout::sampler::{row_stats, top_indices};
use entrl::rollout::{
    Completion, Control, DecodeHooks, DecodePolicy, RolloutConfig, SamplerPlace, SamplingParams, Shapes, StepView,
    decode, generate,
};
use entrl_tests::{assert_same_completions as assert_same, logits_rows, smollm2_dir, tiny_model};

const V: usize = 96;

fn policy(shapes: Shapes, sampler: SamplerPlace, bucket: usize) -> DecodePolicy {
    DecodePolicy {
        shapes,
        sampler,
        length_bucket: bucket,
        ..Default::default()
    }
}

fn cfg(group: usize, max_new: usize, temperature: f64, eos: Vec<u32>, policy: DecodePolicy) -> RolloutConfig {
    RolloutConfig {
        group_size: group,
        max_new_tokens: max_new,
        sampling: SamplingParams {
            temperature,
            top_logprobs: 5,
            ..Default::default()
        },
        eos_ids: eos,
        seed: 11,
        first_prompt_index: 0,
        policy,
    }
}

/// Each token's log-prob and entropy against a from-scratch forward of the whole sequence.
fn assert_stats_match_full_pass(model: &Transformer<Cpu>, prompts: &[Vec<u32>], comps: &[Completion], tol: f64) -> f64 {
    let mut worst = 0f64;
    for c in comps {
        let prompt = &prompts[c.prompt_index];
        let seq: Vec<u32> = prompt.iter().chain(&c.tokens).copied().collect();
        let rows = logits_rows(model, &seq);
        for (j, &tok) in c.tokens.iter().enumerate() {
            let z = &rows[prompt.len() - 1 + j];
            let st = row_stats(z, 1.0);
            worst = worst.max((z[tok as usize] as f64 - st.logz - c.logprobs[j] as f64).abs());
            worst = worst.max((st.entropy - c.entropies[j] as f64).abs());
            worst = worst.max((st.self_certainty - c.self_certainty[j] as f64).abs());
        }
    }
    assert!(worst <= tol, "device statistics vs full pass: {worst:.2e} > {tol}");
    worst
}

fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![5, 17, 9, 33, 12, 7, 8, 60, 61],
        vec![40, 41],
        vec![3, 2, 70, 71, 72],
    ]
}

#[test]
fn greedy_fixed_shapes_equal_the_shrinking_loop_on_the_tiny_model() {
    let model = tiny_model(V, 21);
    let ps = prompts();
    // EOS ids that the tiny model does emit, so that rows finish early and their slots idle
    let plain = generate(&model, &ps, &cfg(2, 24, 0.0, vec![], DecodePolicy::default()));
    let eos: Vec<u32> = vec![plain[0].tokens[5], plain[2].tokens[9]];
    let shrink = generate(&model, &ps, &cfg(2, 24, 0.0, eos.clone(), DecodePolicy::default()));
    assert!(shrink.iter().any(|c| c.tokens.len() < 24), "some rows finish early");
    for sampler in [SamplerPlace::Host, SamplerPlace::Device] {
        for bucket in [1, 8, 64] {
            let fixed = generate(
                &model,
                &ps,
                &cfg(2, 24, 0.0, eos.clone(), policy(Shapes::Fixed, sampler, bucket)),
            );
            let d = assert_same(&shrink, &fixed, 1e-4);
            println!("{sampler:?} bucket {bucket}: max |Δ stats| {d:.2e}");
        }
    }
}

/// Forks every row at the listed positions into its top-`b` tokens.
struct ForkAt(Vec<usize>, usize);
impl DecodeHooks for ForkAt {
    fn control(&mut self, view: &StepView) -> Control {
        if self.0.contains(&view.pos) {
            Control::Fork(view.stats.top.iter().take(self.1).map(|&(t, _)| t).collect())
        } else {
            Control::Continue
        }
    }
}

#[test]
fn forks_under_fixed_shapes_take_idle_slots_and_grow_the_batch() {
    let model = tiny_model(V, 22);
    let ps = prompts();
    let run = |p: DecodePolicy| decode(&model, &ps, &cfg(1, 8, 0.0, vec![], p), &mut ForkAt(vec![1, 4], 3));
    let shrink = run(DecodePolicy::default());
    let fixed = run(policy(Shapes::Fixed, SamplerPlace::Device, 4)); // forking hooks read logits: host draws
    assert_eq!(shrink.completions.len(), ps.len() * 9);
    assert_same(&shrink.completions, &fixed.completions, 1e-4);
    assert_eq!(shrink.cost, fixed.cost, "cost counts active rows, not slots");
}

#[test]
fn device_sampler_statistics_equal_the_full_pass_and_ignore_batch_company() {
    let model = tiny_model(V, 23);
    let ps = prompts();
    let dev = policy(Shapes::Fixed, SamplerPlace::Device, 8);
    let all = generate(&model, &ps, &cfg(3, 16, 1.0, vec![], dev));
    let worst = assert_stats_match_full_pass(&model, &ps, &all, 1e-4);
    println!("device statistics vs full pass: {worst:.2e}");
    // prompt 1 alone (its stream index kept), under the shrinking layout: the same completions
    let mut alone_cfg = cfg(3, 16, 1.0, vec![], policy(Shapes::Shrink, SamplerPlace::Device, 1));
    alone_cfg.first_prompt_index = 1;
    let alone = generate(&model, &ps[1..2], &alone_cfg);
    for (a, b) in alone.iter().zip(&all[3..6]) {
        assert_eq!(a.tokens, b.tokens, "a completion does not depend on its batch");
    }
    // run to run, and distinct samples within a group
    assert_same(&all, &generate(&model, &ps, &cfg(3, 16, 1.0, vec![], dev)), 0.0);
    assert_ne!(all[0].tokens, all[1].tokens);
}

fn chi_square(counts: &[usize], probs: &[f64]) -> f64 {
    let n: usize = counts.iter().sum();
    counts
        .iter()
        .zip(probs)
        .filter(|(_, p)| **p > 0.0)
        .map(|(&c, &p)| (c as f64 - n as f64 * p).powi(2) / (n as f64 * p))
        .sum()
}

/// Draws `n` tokens from the same logits row under `n` different noise keys.
fn draw_counts(z: &[f32], n: usize, p: &SamplingParams) -> Vec<usize> {
    let flat: Vec<f32> = (0..n).flat_map(|_| z.iter().copied()).collect();
    let logits = Tensor::<Cpu, 2>::from_data(TensorData::new(flat, [n, z.len()]), &Default::default());
    let keys: Vec<u32> = (0..n).map(|r| noise_key(5, 0, r, &[], 3)).collect();
    let mut counts = vec![0; z.len()];
    for t in device_step(logits, &keys, p).tokens {
        counts[t as usize] += 1;
    }
    counts
}

fn softmax(z: &[f32], t: f64) -> Vec<f64> {
    let e: Vec<f64> = z.iter().map(|&x| (x as f64 / t).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

#[test]
fn gumbel_draws_follow_the_tempered_softmax_and_the_top_k_top_p_cut() {
    let z = [2.0f32, 1.0, 0.5, 0.0, -1.0, -2.0];
    let n = 6000;
    // 5 degrees of freedom: P(χ² > 30) ≈ 1.5e-5
    let p = SamplingParams {
        temperature: 0.7,
        top_logprobs: 0,
        ..Default::default()
    };
    let counts = draw_counts(&z, n, &p);
    let fit = chi_square(&counts, &softmax(&z, 0.7));
    let planted = chi_square(&counts, &softmax(&z, 1.0)); // the temperature forgotten
    println!("T = 0.7: counts {counts:?}, χ² {fit:.1} (against T = 1: {planted:.1})");
    assert!(fit < 30.0, "χ² {fit:.1}");
    assert!(planted > 100.0, "the test tells T = 0.7 from T = 1 ({planted:.1})");
    // top_k = 4 then top_p = 0.8 inside, at T = 1: the nucleus of the renormalised top 4
    let p = SamplingParams {
        temperature: 1.0,
        top_k: 4,
        top_p: 0.8,
        top_logprobs: 0,
        ..Default::default()
    };
    let top4 = softmax(&z[..4], 1.0);
    let (mut keep, mut before) = (0, 0.0);
    while keep < 4 && before < 0.8 {
        before += top4[keep];
        keep += 1;
    }
    let kept = softmax(&z[..keep], 1.0);
    let expect: Vec<f64> = (0..z.len()).map(|i| kept.get(i).copied().unwrap_or(0.0)).collect();
    let counts = draw_counts(&z, n, &p);
    assert!(
        counts[keep..].iter().all(|&c| c == 0),
        "drew outside the nucleus: {counts:?}"
    );
    let fit = chi_square(&counts, &expect);
    println!("top-k 4, top-p 0.8 keeps {keep}: counts {counts:?}, χ² {fit:.1}");
    assert!(fit < 30.0, "χ² {fit:.1}");
}

#[test]
fn device_noise_and_top_ids_match_their_host_references() {
    let device = Default::default();
    let keys = [noise_key(1, 2, 3, &[], 0), noise_key(1, 2, 4, &[], 0), 0x7FFF_FFFF];
    let ids: Vec<i64> = (0..3).flat_map(|_| [0i64, 1, 2, 49151, 65535, 1 << 20]).collect();
    let key_t = Tensor::<Cpu, 2, Int>::from_data(
        TensorData::new(keys.iter().map(|&k| k as i64).collect::<Vec<_>>(), [3, 1]),
        &device,
    );
    let id_t = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ids.clone(), [3, 6]), &device);
    let g = gumbel(key_t, id_t).into_data().to_vec::<f32>().unwrap();
    for (i, &x) in g.iter().enumerate() {
        let u = noise_uniform(keys[i / 6], ids[i] as u32) as f64;
        let want = -(-u.ln()).ln();
        assert!(
            (x as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
            "noise {i}: {x} vs {want}"
        );
    }
    // uniforms spread over (0, 1): mean ≈ 1/2 over many tokens
    let mean: f64 = (0..100_000u32).map(|t| noise_uniform(keys[0], t) as f64).sum::<f64>() / 1e5;
    assert!((mean - 0.5).abs() < 0.005, "mean uniform {mean}");
    // top ids: ordered, ties to the lower id, as the host's top_indices
    let rows: Vec<f32> = (0..4 * 50)
        .map(|i| ((i * 37 % 23) as f32 * 0.5).sin().round())
        .collect();
    let x = Tensor::<Cpu, 2>::from_data(TensorData::new(rows.clone(), [4, 50]), &device);
    let got = top_ids(x, 7).into_data().convert::<i64>().to_vec::<i64>().unwrap();
    for r in 0..4 {
        let want: Vec<i64> = top_indices(&rows[r * 50..(r + 1) * 50], 7)
            .iter()
            .map(|&i| i as i64)
            .collect();
        assert_eq!(&got[r * 7..(r + 1) * 7], &want[..], "row {r}");
    }
}

#[test]
fn greedy_fixed_shapes_with_device_statistics_equal_the_cpu_loop_on_smollm2() {
    let model: Transformer<Cpu> = model::load_hf_dir(&smollm2_dir(), &Default::default()).unwrap();
    let ps = vec![vec![1, 9690, 198, 2683, 314, 253, 5356, 30], vec![1, 4093, 28, 1070]];
    let shrink = generate(&model, &ps, &cfg(1, 12, 0.0, vec![], DecodePolicy::default()));
    let fixed = generate(
        &model,
        &ps,
        &cfg(1, 12, 0.0, vec![], policy(Shapes::Fixed, SamplerPlace::Device, 16)),
    );
    let d = assert_same(&shrink, &fixed, 1e-4);
    println!("SmolLM2 greedy, fixed shapes + device statistics: tokens equal, max |Δ stats| {d:.2e}");
}
