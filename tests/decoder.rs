//! The decode loop's seam: forks reproduce a from-scratch decode of every branch, a logits
//! processor changes the tokens but never the recorded statistics, the attention probe is a share
//! of attention that does not depend on batch company, and a stop hook ends a row.

use entrl::backend::Cpu;
use entrl::model::{self, Transformer};
use entrl::rollout::sampler::row_stats;
use entrl::rollout::{
    Completion, Control, DecodeHooks, FinishReason, LogitsProcessor, RolloutConfig, SamplingParams, StepView, decode,
    generate, generate_with,
};
use entrl_tests::{assert_equals_from_scratch, logits_rows, smollm2_dir, tiny_model};

const V: usize = 96;

fn greedy(max_new: usize, eos: Vec<u32>) -> RolloutConfig {
    RolloutConfig {
        group_size: 1,
        max_new_tokens: max_new,
        sampling: SamplingParams {
            temperature: 0.0,
            top_logprobs: 5,
            ..Default::default()
        },
        eos_ids: eos,
        seed: 0,
        first_prompt_index: 0,
        policy: entrl::rollout::DecodePolicy::default(),
    }
}

/// Forks every row at the listed positions into its top-`b` tokens.
struct ForkAt {
    positions: Vec<usize>,
    b: usize,
    attention_keys: bool,
}

impl DecodeHooks for ForkAt {
    fn attention_keys(&self, _: usize, len: usize) -> Option<std::ops::Range<usize>> {
        self.attention_keys.then_some(0..len)
    }
    fn control(&mut self, view: &StepView) -> Control {
        if self.positions.contains(&view.pos) {
            Control::Fork(view.stats.top.iter().take(self.b).map(|&(t, _)| t).collect())
        } else {
            Control::Continue
        }
    }
}

fn check_forks(model: &Transformer<Cpu>, prompts: &[Vec<u32>], max_new: usize, tol: f64) {
    let mut hooks = ForkAt {
        positions: vec![1, 4],
        b: 3,
        attention_keys: false,
    };
    let out = decode(model, prompts, &greedy(max_new, vec![]), &mut hooks);
    // no EOS: every prompt ends with 3 × 3 leaves, each max_new long, in path order
    assert_eq!(out.completions.len(), prompts.len() * 9);
    let mut worst = 0f64;
    for (i, c) in out.completions.iter().enumerate() {
        let path: Vec<u32> = c.forks.iter().map(|f| f.child).collect();
        assert_eq!(c.prompt_index, i / 9);
        assert_eq!(path, vec![(i % 9) as u32 / 3, (i % 3) as u32], "leaf order");
        assert_eq!((c.tokens.len(), c.finish_reason), (max_new, FinishReason::Length));
        worst = worst.max(assert_equals_from_scratch(model, &prompts[c.prompt_index], c, tol));
        // siblings share the prefix before the fork
        let first = &out.completions[i - i % 9];
        assert_eq!(c.tokens[..1], first.tokens[..1]);
    }
    // shares of a fork's children sum to 1
    for leaves in out.completions.chunks(9) {
        let s: f32 = leaves.iter().step_by(3).map(|c| c.forks[0].share).sum();
        assert!((s - 1.0).abs() < 1e-5, "shares sum {s}");
    }
    // cost: one prefill plus one forward per decode step
    assert_eq!(out.cost.forward_passes, max_new);
    println!("max |Δ| fork vs from-scratch = {worst:.2e}");
}

#[test]
fn forked_branches_equal_from_scratch_decoding_tiny() {
    let model = tiny_model(V, 5);
    // different lengths: left padding, and forked rows repeated in the cache
    let prompts = vec![vec![5, 17, 9, 33, 12], vec![40, 41], vec![7, 8, 9, 10, 11, 12, 13]];
    check_forks(&model, &prompts, 9, 1e-4);
}

#[test]
fn forked_branches_equal_from_scratch_decoding_smollm2() {
    let dir = smollm2_dir();
    let model = model::load_hf_dir::<Cpu>(&dir, &Default::default()).unwrap();
    let tok = entrl::tokenizer::Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    let prompts: Vec<Vec<u32>> = ["What is 12 plus 30? The answer is", "The capital of France"]
        .iter()
        .map(|s| tok.encode(s))
        .collect();
    check_forks(&model, &prompts, 7, 2e-4);
}

/// Pushes one token to the top: the sampler then always takes it.
struct Force(u32);
impl LogitsProcessor for Force {
    fn process(&mut self, _: &StepView, logits: &mut [f32]) {
        logits[self.0 as usize] += 1e4;
    }
}

#[test]
fn logits_processor_changes_tokens_not_recorded_statistics() {
    let model = tiny_model(V, 6);
    let prompts = vec![vec![5, 17, 9, 33, 12], vec![40, 41]];
    let cfg = RolloutConfig {
        group_size: 2,
        max_new_tokens: 6,
        sampling: SamplingParams::default(),
        eos_ids: vec![],
        seed: 3,
        first_prompt_index: 0,
        policy: entrl::rollout::DecodePolicy::default(),
    };
    let out = generate_with(&model, &prompts, &cfg, &mut Force(11));
    let plain = generate(&model, &prompts, &cfg);
    for (c, p) in out.iter().zip(&plain) {
        assert!(c.tokens.iter().all(|&t| t == 11), "the processor chose the tokens");
        assert_ne!(c.tokens, p.tokens);
        let seq: Vec<u32> = prompts[c.prompt_index].iter().chain(&c.tokens).copied().collect();
        let rows = logits_rows(&model, &seq);
        for (j, &t) in c.tokens.iter().enumerate() {
            let z = &rows[prompts[c.prompt_index].len() - 1 + j];
            let st = row_stats(z, 1.0);
            // the raw model's statistics, not the forced distribution's (log-prob ≈ 0, H ≈ 0)
            assert!((c.logprobs[j] as f64 - (z[t as usize] as f64 - st.logz)).abs() < 1e-4);
            assert!((c.entropies[j] as f64 - st.entropy).abs() < 1e-4);
            assert!(c.logprobs[j] < -0.5, "a forced token is not likely under the raw model");
        }
    }
}

/// Records the probe at every step of every row.
struct Probe {
    keys: fn(usize) -> std::ops::Range<usize>,
    seen: Vec<(usize, usize, f32)>,
}
impl DecodeHooks for Probe {
    fn attention_keys(&self, _: usize, len: usize) -> Option<std::ops::Range<usize>> {
        Some((self.keys)(len))
    }
    fn control(&mut self, view: &StepView) -> Control {
        let a = view.attention.expect("probe asked for");
        self.seen.push((view.completion.prompt_index, view.pos, a));
        Control::Continue
    }
}

#[test]
fn attention_probe_is_a_share_and_independent_of_batch_company() {
    let model = tiny_model(V, 7);
    let prompts = vec![vec![5, 17, 9, 33, 12], vec![40, 41, 3]];
    // keys = the whole prompt: share in (0, 1]; at position 0 the query sees only the prompt → 1
    let mut whole = Probe {
        keys: |len| 0..len,
        seen: vec![],
    };
    decode(&model, &prompts, &greedy(5, vec![]), &mut whole);
    for &(p, pos, a) in &whole.seen {
        assert!(a > 0.0 && a <= 1.0 + 1e-5, "prompt {p} pos {pos}: {a}");
        if pos == 0 {
            assert!((a - 1.0).abs() < 1e-5, "first step attends only to the prompt: {a}");
        }
    }
    // part of the prompt, batched vs alone (left padding must not leak into the share)
    let part = |len: usize| 1..len - 1;
    let mut together = Probe {
        keys: part,
        seen: vec![],
    };
    decode(&model, &prompts, &greedy(5, vec![]), &mut together);
    for (i, p) in prompts.iter().enumerate() {
        let mut alone = Probe {
            keys: part,
            seen: vec![],
        };
        decode(&model, std::slice::from_ref(p), &greedy(5, vec![]), &mut alone);
        let batched: Vec<f32> = together.seen.iter().filter(|s| s.0 == i).map(|s| s.2).collect();
        let single: Vec<f32> = alone.seen.iter().map(|s| s.2).collect();
        assert_eq!(batched.len(), single.len());
        for (a, b) in batched.iter().zip(&single) {
            assert!((a - b).abs() < 1e-5, "prompt {i}: {a} vs {b}");
        }
        assert!(
            single.iter().all(|&a| a < 1.0 - 1e-4),
            "a strict part of the keys gets less than all"
        );
    }
}

/// Forks plus sampling: each leaf's RNG is keyed by its path, so the same prompt decodes the same
/// whether alone or in a batch.
#[test]
fn sampled_forks_are_independent_of_batch_company() {
    let model = tiny_model(V, 8);
    let prompts = vec![vec![5, 17, 9, 33, 12], vec![40, 41]];
    let cfg = RolloutConfig {
        sampling: SamplingParams::default(),
        group_size: 2,
        ..greedy(8, vec![2])
    };
    let hooks = || ForkAt {
        positions: vec![2],
        b: 2,
        attention_keys: true,
    };
    let together = decode(&model, &prompts, &cfg, &mut hooks()).completions;
    let alone = decode(
        &model,
        &prompts[1..],
        &RolloutConfig {
            first_prompt_index: 1,
            policy: entrl::rollout::DecodePolicy::default(),
            ..cfg.clone()
        },
        &mut hooks(),
    )
    .completions;
    let second: Vec<_> = together.iter().filter(|c| c.prompt_index == 1).collect();
    assert_eq!(second.len(), alone.len());
    for (a, b) in second.iter().zip(&alone) {
        assert_eq!(a.tokens, b.tokens);
        let key = |c: &Completion| c.forks.iter().map(|f| (f.pos, f.child)).collect::<Vec<_>>();
        assert_eq!(key(a), key(b));
        // float sums differ with the batch shape in the last bits only
        assert!((a.forks[0].share - b.forks[0].share).abs() < 1e-5);
    }
    // the two children of a fork continue with different RNG streams
    assert!(
        together
            .windows(2)
            .any(|w| w[0].tokens.get(3..) != w[1].tokens.get(3..))
    );
}

struct StopAt(usize);
impl DecodeHooks for StopAt {
    fn control(&mut self, view: &StepView) -> Control {
        if view.pos == self.0 {
            Control::Stop
        } else {
            Control::Continue
        }
    }
}

#[test]
fn stop_hook_ends_rows() {
    let model = tiny_model(V, 9);
    let out = decode(&model, &[vec![5, 6, 7]], &greedy(10, vec![]), &mut StopAt(3));
    let c = &out.completions[0];
    assert_eq!((c.tokens.len(), c.finish_reason), (3, FinishReason::Stopped));
}
