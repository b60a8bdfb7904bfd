//! `[decode]`: the decode loop's layout on the chosen device ([`crate::rollout::policy`]).

use serde::{Deserialize, Serialize};

use crate::backend::DeviceSpec;
use crate::rollout::policy::{DecodeLayers, DecodePolicy, SamplerPlace, Shapes};

/// `decode.shapes`: the device's own (`auto`: GPU fixed, CPU shrink) or a forced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapesChoice {
    /// The device's default.
    #[default]
    Auto,
    /// [`Shapes::Shrink`].
    Shrink,
    /// [`Shapes::Fixed`].
    Fixed,
}

/// `decode.sampler`: the device's own (`auto`: GPU device, CPU host) or a forced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerChoice {
    /// The device's default.
    #[default]
    Auto,
    /// [`SamplerPlace::Host`].
    Host,
    /// [`SamplerPlace::Device`].
    Device,
}

/// The `[decode]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeSection {
    /// `"auto"`, `"shrink"` or `"fixed"`.
    pub shapes: ShapesChoice,
    /// `"auto"`, `"host"` or `"device"`.
    pub sampler: SamplerChoice,
    /// Prompt columns and attended keys are multiples of this under fixed shapes.
    pub length_bucket: usize,
    /// `"auto"`, `"host"` or `"backend"`: who runs a decode step's layers on the CPU.
    pub layers: DecodeLayers,
}

impl Default for DecodeSection {
    fn default() -> Self {
        Self {
            shapes: ShapesChoice::Auto,
            sampler: SamplerChoice::Auto,
            length_bucket: 64,
            layers: DecodeLayers::Auto,
        }
    }
}

impl DecodeSection {
    /// Range checks, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.length_bucket == 0 {
            return Err("key 'decode.length_bucket' must be >= 1, got 0".into());
        }
        Ok(())
    }

    /// The policy on `device`.
    pub fn resolve(&self, device: DeviceSpec) -> DecodePolicy {
        let gpu = matches!(device, DeviceSpec::Cuda(_));
        DecodePolicy {
            shapes: match self.shapes {
                ShapesChoice::Fixed => Shapes::Fixed,
                ShapesChoice::Shrink => Shapes::Shrink,
                ShapesChoice::Auto if gpu => Shapes::Fixed,
                ShapesChoice::Auto => Shapes::Shrink,
            },
            sampler: match self.sampler {
                SamplerChoice::Device => SamplerPlace::Device,
                SamplerChoice::Host => SamplerPlace::Host,
                SamplerChoice::Auto if gpu => SamplerPlace::Device,
                SamplerChoice::Auto => SamplerPlace::Host,
            },
            length_bucket: self.length_bucket,
            layers: self.layers,
        }
    }
}
