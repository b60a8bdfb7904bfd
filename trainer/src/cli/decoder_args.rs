//! The decoder flags shared by `entrl generate` (and usable by any command that decodes).

use clap::Args;
use entrl::decoding::tree::{Importance, LeafWeight, Threshold};
use entrl::decoding::{AdaptiveTemperatureConfig, Decoder, EmInfConfig, TreeConfig};

/// `--decoder` and its options. Unset options keep the preset's (or the default's) value.
#[derive(Args, Debug, Clone)]
pub struct DecoderArgs {
    /// sample | em-inf | adaptive-temperature | tree
    #[arg(long, default_value = "sample")]
    pub decoder: String,
    /// em-inf: released (default) | function-defaults; adaptive-temperature: released (default) |
    /// class-defaults.
    #[arg(long)]
    pub preset: Option<String>,
    /// em-inf: stop optimising once the entropy is below this (nats).
    #[arg(long)]
    pub em_threshold: Option<f64>,
    /// em-inf: weight of KL(p0‖p).
    #[arg(long)]
    pub em_kl_weight: Option<f64>,
    /// em-inf: Adam learning rate on the logits.
    #[arg(long)]
    pub em_lr: Option<f64>,
    /// em-inf: most Adam steps per token.
    #[arg(long)]
    pub em_steps: Option<usize>,
    /// adaptive-temperature: target entropy as a share of the raw entropy (the paper's α).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// adaptive-temperature: δ, the entropy floor (steps at or below it are left alone).
    #[arg(long)]
    pub at_threshold: Option<f64>,
    /// adaptive-temperature: stop the bisection within this many nats of the target.
    #[arg(long)]
    pub at_tol: Option<f64>,
    /// adaptive-temperature: lowest temperature searched.
    #[arg(long)]
    pub at_t_min: Option<f64>,
    /// tree: τ as an entropy value (nats).
    #[arg(long, conflicts_with = "tau_percentile")]
    pub tau: Option<f64>,
    /// tree: τ as a percentile of the entropies of greedy decodes of the prompts (default 80).
    #[arg(long)]
    pub tau_percentile: Option<f64>,
    /// tree: δ as an attention-mass value in [0, 1].
    #[arg(long, conflicts_with = "delta_percentile")]
    pub delta: Option<f64>,
    /// tree: δ as a percentile of the importances of greedy decodes of the prompts (default 50).
    #[arg(long)]
    pub delta_percentile: Option<f64>,
    /// tree: no importance gate (fork on entropy alone).
    #[arg(long)]
    pub no_importance: bool,
    /// tree: children per fork (b).
    #[arg(long)]
    pub branch: Option<usize>,
    /// tree: most leaves per tree (N_tree).
    #[arg(long)]
    pub max_leaves: Option<usize>,
    /// tree: leaf weighting of p(a|x): weighted | frequency.
    #[arg(long)]
    pub leaf_weight: Option<String>,
}

fn set<T: Copy>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

impl DecoderArgs {
    /// The decoder the flags describe, validated; errors name the flag.
    pub fn decoder(&self) -> anyhow::Result<Decoder> {
        let d = match Decoder::named(&self.decoder).map_err(|e| anyhow::anyhow!("--decoder: {e}"))? {
            Decoder::EmInf(_) => Decoder::EmInf(self.em_inf()?),
            Decoder::AdaptiveTemperature(_) => Decoder::AdaptiveTemperature(self.adaptive()?),
            Decoder::Tree(_) => Decoder::Tree(self.tree()?),
            Decoder::Sample => {
                anyhow::ensure!(self.preset.is_none(), "--preset: the sample decoder has no presets");
                Decoder::Sample
            }
        };
        d.validate().map_err(anyhow::Error::msg)?;
        Ok(d)
    }

    /// The sampling temperature when `--temperature` is not given: the released EM-INF script's
    /// 0.1 for em-inf, greedy (0) between a tree's forks, 1 otherwise.
    pub fn default_temperature(&self, d: &Decoder) -> f64 {
        match d {
            Decoder::EmInf(_) => EmInfConfig::RELEASED_TEMPERATURE,
            Decoder::Tree(_) => 0.0,
            Decoder::Sample | Decoder::AdaptiveTemperature(_) => 1.0,
        }
    }

    fn em_inf(&self) -> anyhow::Result<EmInfConfig> {
        let mut c = match self.preset.as_deref() {
            None | Some("released") => EmInfConfig::released(),
            Some("function-defaults") => EmInfConfig::function_defaults(),
            Some(p) => anyhow::bail!("--preset: unknown em-inf preset '{p}' (released, function-defaults)"),
        };
        set(&mut c.threshold, self.em_threshold);
        set(&mut c.kl_weight, self.em_kl_weight);
        set(&mut c.lr, self.em_lr);
        set(&mut c.n_grad_steps, self.em_steps);
        Ok(c)
    }

    fn adaptive(&self) -> anyhow::Result<AdaptiveTemperatureConfig> {
        let mut c = match self.preset.as_deref() {
            None | Some("released") => AdaptiveTemperatureConfig::released(),
            Some("class-defaults") => AdaptiveTemperatureConfig::class_defaults(),
            Some(p) => anyhow::bail!("--preset: unknown adaptive-temperature preset '{p}' (released, class-defaults)"),
        };
        set(&mut c.ratio, self.alpha);
        set(&mut c.threshold, self.at_threshold);
        set(&mut c.tol, self.at_tol);
        set(&mut c.t_min, self.at_t_min);
        Ok(c)
    }

    fn tree(&self) -> anyhow::Result<TreeConfig> {
        anyhow::ensure!(self.preset.is_none(), "--preset: the tree decoder has no presets");
        let mut c = TreeConfig::default();
        if let Some(v) = self.tau {
            c.tau = Threshold::Value(v);
        }
        if let Some(p) = self.tau_percentile {
            c.tau = Threshold::Percentile(p);
        }
        if let Some(v) = self.delta {
            anyhow::ensure!(
                (0.0..=1.0).contains(&v),
                "--delta: an attention mass in [0, 1], got {v}"
            );
            c.delta = Threshold::Value(v);
        }
        if let Some(p) = self.delta_percentile {
            c.delta = Threshold::Percentile(p);
        }
        if self.no_importance {
            c.importance = Importance::None;
        }
        set(&mut c.branch, self.branch);
        set(&mut c.max_leaves, self.max_leaves);
        c.leaf_weight = match self.leaf_weight.as_deref() {
            None | Some("weighted") => LeafWeight::Weighted,
            Some("frequency") => LeafWeight::Frequency,
            Some(w) => anyhow::bail!("--leaf-weight: unknown rule '{w}' (weighted, frequency)"),
        };
        Ok(c)
    }
}
