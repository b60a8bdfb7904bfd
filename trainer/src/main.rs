//! The `entrl` command line. Parsing and wiring only; the work lives in the library.

use clap::{Parser, Subcommand};

mod cli;

/// entrl: RL fine-tuning of small transformers with entropy dynamics as a first-class signal.
#[derive(Parser)]
#[command(name = "entrl", version, about)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train from a TOML run file (supervised warm-up, then GRPO/RLOO), or resume a run directory.
    Train(cli::train::TrainArgs),
    /// Evaluate checkpoints: greedy + N samples per problem, pass@k, maj@k, best-of-N by
    /// entropy signals (EDIS, mean entropy, self-certainty, NLL), AUROCs; resumable.
    Eval(cli::eval::EvalArgs),
    /// Run or continue an ablation sweep (arms × seeds; finished arms skipped) and aggregate it
    /// into sweep.csv, sweep.md and plots.
    Sweep(cli::sweep::SweepArgs),
    /// Sample completions with per-token entropy from a model directory or a from-scratch config.
    Generate(Box<cli::generate::GenerateArgs>),
    /// Convert a GGUF file (e.g. SmolLM2-135M-Instruct Q4_1) into a Hugging Face directory.
    ImportGguf(cli::model_dir::ImportArgs),
    /// Write the synthetic tasks' character-level tokenizer.json.
    SyntheticTokenizer(cli::model_dir::TokenizerArgs),
    /// Entropy Sentinel: estimate a model's accuracy per domain without labels (fit on labelled
    /// domains, then estimate), with the ATC and length-only baselines.
    Sentinel(cli::sentinel::SentinelArgs),
    /// Analyses of a model's reasoning: `sia` (answer entropy after each step).
    Analyze(cli::analyze::AnalyzeArgs),
    /// Rollout and scoring throughput next to this machine's matmul GFLOP/s.
    Bench(cli::bench::BenchArgs),
    /// Write a seeded from-scratch model as a Hugging Face directory.
    Init(cli::model_dir::InitArgs),
    /// Load a Hugging Face directory and save it again through entrl's writer.
    Resave(cli::model_dir::ResaveArgs),
    /// Print the logits of one token sequence as JSON (cross-checks with other tools).
    Logits(cli::model_dir::LogitsArgs),
}

fn main() -> std::process::ExitCode {
    cli::malloc::tune(); // may re-execute this binary once, before any work (cli/malloc.rs)
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())) // no escape codes in log files
        .init();
    let result = match Args::parse().cmd {
        Cmd::Train(a) => cli::train::run(a),
        Cmd::Eval(a) => cli::eval::run(a),
        Cmd::Sweep(a) => cli::sweep::run(a),
        Cmd::Generate(a) => cli::generate::run(*a),
        Cmd::ImportGguf(a) => cli::model_dir::import(a),
        Cmd::SyntheticTokenizer(a) => cli::model_dir::tokenizer(a),
        Cmd::Sentinel(a) => cli::sentinel::run(a),
        Cmd::Analyze(a) => cli::analyze::run(a),
        Cmd::Bench(a) => cli::bench::run(a),
        Cmd::Init(a) => cli::model_dir::init(a),
        Cmd::Resave(a) => cli::model_dir::resave(a),
        Cmd::Logits(a) => cli::model_dir::logits(a),
    };
    // Errors are for users: the message chain ("file: key 'x': ..."), no backtrace.
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
