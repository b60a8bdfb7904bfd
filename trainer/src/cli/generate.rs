//! `entrl generate`: completions with per-token entropy, as text or JSONL.

use std::path::PathBuf;

use anyhow::bail;
use burn::tensor::backend::Backend;
use clap::Args;
use entrl::backend::DeviceSpec;
use entrl::data::PromptFormat;
use entrl::data::template::{NamedTemplate, Template};
use entrl::decoding::{self, Decoder, DecoderRun};
use entrl::model::{self, Transformer, weights};
use entrl::rollout::{Completion, RolloutConfig, SamplingParams};
use entrl::tokenizer::Tokenizer;
use entrl::tokenizer::{tokenizer_dir, tokenizer_json};

use super::decoder_args::DecoderArgs;

/// Arguments of `entrl generate`.
#[derive(Args)]
pub struct GenerateArgs {
    /// Hugging Face model directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long, conflicts_with = "config")]
    pub model: Option<PathBuf>,
    /// From-scratch model: a JSON file in config.json vocabulary, randomly initialised.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// tokenizer.json (default: the model directory's, or data/tokenizer.json with --config).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Prompts (each is one group).
    #[arg(required = true)]
    pub prompts: Vec<String>,
    /// Wrap each prompt as a user turn in the model's own chat template (`chat_template` of its
    /// tokenizer_config.json), with the generation prompt.
    #[arg(long)]
    pub chat: bool,
    /// With --chat: a system turn (default: the template's own, if any).
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// Completions per prompt (group size G).
    #[arg(short = 'n', long, default_value_t = 1)]
    pub n: usize,
    /// Longest completion in tokens.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Sampling temperature (0 = greedy; default: 0.1 for em-inf as released, 0 between a tree's
    /// forks, 1 otherwise).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// HF-style repetition penalty over prompt and completion (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Top-k filter (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seed of the random init with --config.
    #[arg(long, default_value_t = 0)]
    pub init_seed: u64,
    /// One JSON object per completion (tokens, log-probs, entropies, top-20, finish reason, fork
    /// points), then one per prompt for a tree (answer distribution, predictive entropy).
    #[arg(long)]
    pub json: bool,
    /// The decoder and its options.
    #[command(flatten)]
    pub decode: DecoderArgs,
    /// cpu | cuda | cuda:N
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

fn load<B: Backend>(a: &GenerateArgs, device: &B::Device) -> anyhow::Result<(Transformer<B>, PathBuf)> {
    match (&a.model, &a.config) {
        (Some(dir), _) => Ok((
            model::load_hf_dir(dir, device)?,
            tokenizer_json(a.tokenizer.as_deref(), Some(dir)),
        )),
        (None, Some(cfg_path)) => {
            let cfg = model::read_model_config_file(cfg_path)?;
            let w = weights::init_weights(&cfg, a.init_seed);
            Ok((
                weights::build_model(&cfg, w, device)?,
                tokenizer_json(a.tokenizer.as_deref(), None),
            ))
        }
        (None, None) => bail!("give --model DIR or --config FILE"),
    }
}

/// Runs `entrl generate`.
pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    let spec: DeviceSpec = a.device.parse().map_err(anyhow::Error::msg)?;
    entrl::with_backend!(spec, |B, device| run_on::<B>(&a, &device))
}

fn run_on<B: Backend>(a: &GenerateArgs, device: &B::Device) -> anyhow::Result<()> {
    let (model, tok_path) = load::<B>(a, device)?;
    let tok = Tokenizer::from_file(&tok_path)?;
    if tok.vocab_size > model.config().vocab_size {
        bail!(
            "{}: tokenizer has {} tokens but the model only {}",
            tok_path.display(),
            tok.vocab_size,
            model.config().vocab_size
        );
    }
    let texts: Vec<String> = if a.chat {
        let model_template = Template::Named(NamedTemplate::Model);
        let format = PromptFormat::resolve(
            &model_template,
            a.system.clone(),
            String::new(),
            tokenizer_dir(&tok_path),
        )?;
        a.prompts.iter().map(|p| format.prompt(p)).collect()
    } else {
        a.prompts.clone()
    };
    let prompts: Vec<Vec<u32>> = texts.iter().map(|t| tok.encode(t)).collect();
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        bail!("prompt {i} encodes to no tokens");
    }
    let decoder = a.decode.decoder()?;
    let eos = tok.end_ids(model.config().eos_ids());
    let sampling = SamplingParams {
        temperature: a.temperature.unwrap_or_else(|| a.decode.default_temperature(&decoder)),
        top_p: a.top_p,
        top_k: a.top_k,
        repetition_penalty: a.repetition_penalty,
        ..Default::default()
    };
    sampling.validate().map_err(anyhow::Error::msg)?;
    let cfg = RolloutConfig {
        group_size: a.n,
        max_new_tokens: a.max_new_tokens,
        sampling,
        eos_ids: eos,
        seed: a.seed,
        first_prompt_index: 0,
        policy: entrl::config::DecodeSection::default().resolve(a.device.parse().map_err(anyhow::Error::msg)?),
    };
    // The question's tokens inside each (templated) prompt, for the tree's importance gate.
    let question: Vec<_> = a
        .prompts
        .iter()
        .zip(&prompts)
        .map(|(q, p)| decoding::tree::question_span(p, &tok.encode(q)))
        .collect();
    let decoder = match decoder {
        Decoder::Tree(t) => Decoder::Tree(t.calibrated(&model, &prompts, &cfg, &question)),
        d => d,
    };
    let DecoderRun { decoded, processor } = decoding::run(&model, &prompts, &cfg, &decoder, &question);
    let out = decoded.completions;
    tracing::info!(decoder = ?decoder, cost = ?decoded.cost, processor = ?processor, "decoded");
    for c in &out {
        let text = tok.decode(&c.tokens, true);
        if a.json {
            let mut v = serde_json::to_value(c)?;
            v["prompt"] = serde_json::json!(a.prompts[c.prompt_index]);
            v["text"] = serde_json::json!(text);
            if let Decoder::Tree(t) = &decoder {
                v["weight"] = serde_json::json!(decoding::tree::leaf_weight(c, t.leaf_weight));
            }
            println!("{}", serde_json::to_string(&v)?);
        } else {
            let mean_h = c.entropies.iter().sum::<f32>() / c.entropies.len().max(1) as f32;
            println!(
                "=== prompt {} sample {} ({:?}, {} tokens, mean entropy {:.3} nats)",
                c.prompt_index,
                c.sample_index,
                c.finish_reason,
                c.tokens.len(),
                mean_h
            );
            println!("{}", text);
            let per_tok: Vec<String> = c
                .tokens
                .iter()
                .zip(&c.entropies)
                .map(|(&t, h)| format!("{:?}:{h:.2}", tok.decode(&[t], true)))
                .collect();
            println!("--- per-token entropy: {}", per_tok.join(" "));
        }
    }
    if let Decoder::Tree(t) = &decoder {
        print_trees(&out, &tok, t.leaf_weight, a)?;
    }
    Ok(())
}

/// One summary per tree: leaves, p(a|x) over the answers (`####`, `\boxed{}` or last number) and
/// the predictive entropy.
fn print_trees(
    leaves: &[Completion],
    tok: &Tokenizer,
    rule: decoding::tree::LeafWeight,
    a: &GenerateArgs,
) -> anyhow::Result<()> {
    for (p, prompt) in a.prompts.iter().enumerate() {
        let answers: Vec<(Option<String>, f64)> = leaves
            .iter()
            .filter(|c| c.prompt_index == p)
            .map(|c| {
                let text = tok.decode(&c.tokens, false);
                let ans = entrl_rewards::extract::Extractor::Auto.extract(&text);
                (
                    ans.map(|s| entrl_rewards::selection::answer_key(&s)),
                    decoding::tree::leaf_weight(c, rule),
                )
            })
            .collect();
        let dist = decoding::tree::answer_distribution(&answers);
        let pe = decoding::tree::predictive_entropy(&dist);
        if a.json {
            let v = serde_json::json!({"prompt": prompt, "leaves": answers.len(), "answer_distribution": dist, "predictive_entropy": pe});
            println!("{}", serde_json::to_string(&v)?);
        } else {
            let shown: Vec<String> = dist
                .iter()
                .map(|(k, q)| format!("{}: {q:.3}", k.as_deref().unwrap_or("(none)")))
                .collect();
            println!(
                "=== tree {p}: {} leaves, p(a|x) {{{}}}, predictive entropy {pe:.3} nats",
                answers.len(),
                shown.join(", ")
            );
        }
    }
    Ok(())
}
