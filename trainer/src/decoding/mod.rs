//! Inference-time decoders on the decode loop's seam ([`crate::rollout::decoder`]): plain
//! sampling, EM-INF and adaptive temperature (logits processors: they rewrite a copy of each
//! step's logits before the sampler) and Entropy-Tree (a fork control). The recorded statistics
//! are always the model's own.

pub mod adaptive_temperature;
pub mod em_inf;
pub mod tree;

use std::ops::Range;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::model::Transformer;
use crate::rollout::{Decoded, LogitsProcessor, RolloutConfig, StepView, decode, decoder::Plain};
pub use adaptive_temperature::AdaptiveTemperatureConfig;
pub use em_inf::EmInfConfig;
pub use tree::TreeConfig;

/// A decoder and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decoder {
    /// The sampler alone (temperature, top-k, top-p, repetition penalty).
    Sample,
    /// EM-INF before the sampler.
    EmInf(EmInfConfig),
    /// Adaptive temperature before the sampler.
    AdaptiveTemperature(AdaptiveTemperatureConfig),
    /// Entropy-Tree: forks at high-entropy, attention-important positions.
    Tree(TreeConfig),
}

impl Decoder {
    /// The names `--decoder` and `kind` accept.
    pub const NAMES: [&'static str; 4] = ["sample", "em-inf", "adaptive-temperature", "tree"];

    /// The decoder called `name` with its default options (hyphens or underscores).
    pub fn named(name: &str) -> Result<Self, String> {
        match name.replace('_', "-").as_str() {
            "sample" => Ok(Self::Sample),
            "em-inf" => Ok(Self::EmInf(EmInfConfig::default())),
            "adaptive-temperature" => Ok(Self::AdaptiveTemperature(AdaptiveTemperatureConfig::default())),
            "tree" => Ok(Self::Tree(TreeConfig::default())),
            _ => Err(format!(
                "unknown decoder '{name}' (expected one of: {})",
                Self::NAMES.join(", ")
            )),
        }
    }

    /// Short name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sample => "sample",
            Self::EmInf(_) => "em-inf",
            Self::AdaptiveTemperature(_) => "adaptive-temperature",
            Self::Tree(_) => "tree",
        }
    }

    /// The name with the options that tell arms apart, for reports.
    pub fn label(&self) -> String {
        match self {
            Self::Sample => "sample".into(),
            Self::EmInf(c) => format!(
                "em-inf (threshold {}, kl {}, lr {}, {} steps)",
                c.threshold, c.kl_weight, c.lr, c.n_grad_steps
            ),
            Self::AdaptiveTemperature(c) => format!("adaptive-temperature (ratio {}, δ {})", c.ratio, c.threshold),
            Self::Tree(c) => format!("tree (b {}, N {})", c.branch, c.max_leaves),
        }
    }

    /// Checks every option; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let prefix = |r: Result<(), String>| r.map_err(|e| format!("decoder {}: {e}", self.name()));
        match self {
            Self::Sample => Ok(()),
            Self::EmInf(c) => prefix(c.validate()),
            Self::AdaptiveTemperature(c) => prefix(c.validate()),
            Self::Tree(c) => prefix(c.validate()),
        }
    }
}

/// What a processor did over a whole decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessorStats {
    /// Steps the processor saw.
    pub steps: usize,
    /// EM-INF: Adam steps taken in total; adaptive temperature: bisection midpoints.
    pub iterations: usize,
    /// Adaptive temperature: mean temperature applied.
    pub mean_temperature: f64,
}

/// A logits processor built from its options, counting what it did.
pub struct Counting<C> {
    /// Options.
    pub cfg: C,
    /// Counters.
    pub stats: ProcessorStats,
}

/// EM-INF as a logits processor.
pub type EmInfProcessor = Counting<EmInfConfig>;
/// Adaptive temperature as a logits processor.
pub type AdaptiveTemperatureProcessor = Counting<AdaptiveTemperatureConfig>;

impl LogitsProcessor for EmInfProcessor {
    fn process(&mut self, _: &StepView, logits: &mut [f32]) {
        self.stats.iterations += em_inf::minimise(logits, &self.cfg);
        self.stats.steps += 1;
    }
}

impl LogitsProcessor for AdaptiveTemperatureProcessor {
    fn process(&mut self, _: &StepView, logits: &mut [f32]) {
        let a = adaptive_temperature::adapt(logits, &self.cfg);
        let n = self.stats.steps as f64;
        self.stats.mean_temperature = (self.stats.mean_temperature * n + a.temperature) / (n + 1.0);
        self.stats.iterations += a.iterations;
        self.stats.steps += 1;
    }
}

/// A decode's completions, its cost and, for processors, what they did.
#[derive(Debug, Clone)]
pub struct DecoderRun {
    /// Completions (for a tree: its leaves) and cost.
    pub decoded: Decoded,
    /// Processor counters (zero for sample and tree).
    pub processor: ProcessorStats,
}

/// Decodes with the processor of options `c` (and no control); its counters come back too.
fn processed<B: Backend, C: Clone>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    cfg: &RolloutConfig,
    c: &C,
) -> DecoderRun
where
    Counting<C>: LogitsProcessor,
{
    let mut p = Counting {
        cfg: c.clone(),
        stats: ProcessorStats::default(),
    };
    let decoded = decode(model, prompts, cfg, &mut crate::rollout::engine::Processing(&mut p));
    DecoderRun {
        decoded,
        processor: p.stats,
    }
}

/// Runs `decoder` on `prompts`. `question[p]` is the span of prompt `p`'s tokens that the tree's
/// importance gate measures attention on (ignored by the other decoders); a tree with percentile
/// thresholds must be [`tree::TreeConfig::calibrated`] first.
pub fn run<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    cfg: &RolloutConfig,
    decoder: &Decoder,
    question: &[Range<usize>],
) -> DecoderRun {
    match decoder {
        Decoder::Sample => DecoderRun {
            decoded: decode(model, prompts, cfg, &mut Plain),
            processor: ProcessorStats::default(),
        },
        Decoder::EmInf(c) => processed(model, prompts, cfg, c),
        Decoder::AdaptiveTemperature(c) => processed(model, prompts, cfg, c),
        Decoder::Tree(t) => DecoderRun {
            decoded: tree::grow(model, prompts, cfg, t, question),
            processor: ProcessorStats::default(),
        },
    }
}
