//! `entrl bench`: throughput of rollout and scoring for the tiny config and (if given) a real model.

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use clap::Args;
use entrl::backend::DeviceSpec;
use entrl::bench::{BenchResult, bench_rollout, bench_scoring, bench_train, matmul_gflops};
use entrl::model::{self, ModelConfig, weights};

/// Arguments of `entrl bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// A Hugging Face model directory to benchmark besides the tiny config (e.g. SmolLM2-135M).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Prompts per rollout batch.
    #[arg(long, default_value_t = 2)]
    pub prompts: usize,
    /// Group size G.
    #[arg(long, default_value_t = 8)]
    pub group: usize,
    /// Tokens generated per completion.
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
    /// cpu | cuda | cuda:N
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Training-step benchmark (fwd + bwd + AdamW, loss on all positions): batch size B.
    #[arg(long, default_value_t = 8)]
    pub train_batch: usize,
    /// Training-step benchmark: sequence length T.
    #[arg(long, default_value_t = 128)]
    pub train_len: usize,
    /// Timed training steps (best reported; 0 = no training benchmark).
    #[arg(long, default_value_t = 2)]
    pub train_steps: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let spec: DeviceSpec = a.device.parse().map_err(anyhow::Error::msg)?;
    let (mm, mut results) = entrl::with_backend!(spec, |B, device| run_on::<B>(&a, &device))?;
    if a.train_steps > 0 {
        results.extend(entrl::with_train_backend!(spec, |B, device| train_on::<B>(
            &a, &device
        ))?);
    }
    print_and_save(&a, &mm, &results)
}

/// The training-step benchmark on the autodiff backend: the tiny config, then `--model`.
fn train_on<AB: burn::tensor::backend::AutodiffBackend>(
    a: &BenchArgs,
    device: &AB::Device,
) -> anyhow::Result<Vec<BenchResult>> {
    let tiny_cfg = ModelConfig::tiny(96);
    let tiny = weights::build_model::<AB>(&tiny_cfg, weights::init_weights(&tiny_cfg, 0), device)?;
    let mut out = vec![bench_train("tiny", tiny, a.train_batch, a.train_len, a.train_steps)];
    if let Some(dir) = &a.model {
        let m = model::load_hf_dir::<AB>(dir, device)?;
        out.push(bench_train(
            &label_of(dir),
            m,
            a.train_batch,
            a.train_len,
            a.train_steps,
        ));
    }
    Ok(out)
}

fn label_of(dir: &std::path::Path) -> String {
    dir.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Matmul GFLOP/s by size, then rollout and scoring results (the tiny config, then `--model`).
type Measured = (Vec<(usize, f64)>, Vec<BenchResult>);

fn run_on<B: Backend>(a: &BenchArgs, device: &B::Device) -> anyhow::Result<Measured> {
    let mm: Vec<(usize, f64)> = [512, 1024, 2048]
        .iter()
        .map(|&n| (n, matmul_gflops::<B>(n, device)))
        .collect();
    println!(
        "device {:?}; f32 matmul GFLOP/s: {}",
        device,
        mm.iter()
            .map(|(n, g)| format!("n={n}: {g:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut results: Vec<BenchResult> = vec![];
    let tiny_cfg = ModelConfig::tiny(96);
    let tiny = weights::build_model::<B>(&tiny_cfg, weights::init_weights(&tiny_cfg, 0), device)?;
    let policy = entrl::config::DecodeSection::default().resolve(a.device.parse().map_err(anyhow::Error::msg)?);
    results.push(bench_rollout(
        "tiny",
        &tiny,
        a.prompts,
        24,
        a.group,
        a.new_tokens,
        policy,
    ));
    results.push(bench_scoring("tiny", &tiny, 16, 128));
    if let Some(dir) = &a.model {
        let m = model::load_hf_dir::<B>(dir, device)?;
        let label = label_of(dir);
        results.push(bench_rollout(&label, &m, a.prompts, 24, a.group, a.new_tokens, policy));
        results.push(bench_scoring(&label, &m, 8, 128));
    }
    Ok((mm, results))
}

fn print_and_save(a: &BenchArgs, mm: &[(usize, f64)], results: &[BenchResult]) -> anyhow::Result<()> {
    println!(
        "{:<28} {:>12} {:<18} {:>8} {:>8} {:>10} {:>9}",
        "model", "params", "phase", "tokens", "secs", "tok/s", "GFLOP/s"
    );
    for r in results {
        println!(
            "{:<28} {:>12} {:<18} {:>8} {:>8.2} {:>10.1} {:>9.1}",
            r.model, r.params, r.phase, r.tokens, r.seconds, r.tokens_per_s, r.gflops
        );
    }
    if let Some(p) = &a.json {
        let v = serde_json::json!({"matmul_gflops": mm, "results": results});
        std::fs::write(p, serde_json::to_string_pretty(&v)?)?;
    }
    Ok(())
}
