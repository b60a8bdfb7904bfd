//! Rotary frequencies: plain (`theta^(-2i/E)`) and Llama 3.x's `llama3` scaling, which divides the
//! low frequencies by `factor`, keeps the high ones, and interpolates smoothly in between
//! (transformers' `_compute_llama3_parameters`). Computed once per forward call in f64.

use serde_json::Value;

/// The `rope_scaling` types whose positions entrl computes.
pub const SUPPORTED_ROPE_TYPES: [&str; 2] = ["default", "llama3"];

/// The scaling's type (`rope_type`, or the older key `type`); "default" when absent.
pub fn rope_type(scaling: &Value) -> &str {
    scaling["rope_type"]
        .as_str()
        .or(scaling["type"].as_str())
        .unwrap_or("default")
}

/// The four numbers of a `llama3` scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Llama3 {
    factor: f64,
    low_freq_factor: f64,
    high_freq_factor: f64,
    original_max_position_embeddings: f64,
}

impl Llama3 {
    fn parse(scaling: &Value) -> Result<Self, String> {
        let num = |k: &str| {
            scaling[k]
                .as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| format!("rope_scaling of type 'llama3' needs a positive number '{k}'"))
        };
        let s = Self {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        };
        if s.high_freq_factor <= s.low_freq_factor {
            return Err("rope_scaling of type 'llama3' needs high_freq_factor > low_freq_factor".into());
        }
        Ok(s)
    }

    /// One frequency, rescaled by its wavelength band.
    fn scale(&self, inv_freq: f64) -> f64 {
        let ctx = self.original_max_position_embeddings;
        let (low_wavelen, high_wavelen) = (ctx / self.low_freq_factor, ctx / self.high_freq_factor);
        let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
        if wavelen < high_wavelen {
            inv_freq
        } else if wavelen > low_wavelen {
            inv_freq / self.factor
        } else {
            let smooth = (ctx / wavelen - self.low_freq_factor) / (self.high_freq_factor - self.low_freq_factor);
            (1.0 - smooth) * inv_freq / self.factor + smooth * inv_freq
        }
    }
}

/// Checks a `rope_scaling` table: a type entrl implements, with its parameters.
pub fn validate(scaling: &Value) -> Result<(), String> {
    match rope_type(scaling) {
        "default" => Ok(()),
        "llama3" => Llama3::parse(scaling).map(|_| ()),
        other => Err(format!(
            "rope_scaling of type '{other}' is not supported (entrl implements {})",
            SUPPORTED_ROPE_TYPES.join(", ")
        )),
    }
}

/// Inverse frequencies `[head_dim / 2]` for `theta` and an optional (validated) scaling.
pub fn inv_freq(head_dim: usize, theta: f64, scaling: Option<&Value>) -> Vec<f64> {
    let llama3 = scaling
        .filter(|s| rope_type(s) == "llama3")
        .map(|s| Llama3::parse(s).expect("rope_scaling validated with the config"));
    (0..head_dim / 2)
        .map(|i| {
            let f = 1.0 / theta.powf((2 * i) as f64 / head_dim as f64);
            llama3.map_or(f, |l| l.scale(f))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_bands() {
        // Llama-3.2's numbers: factor 32 here for a clear ratio, original context 8192.
        let s = serde_json::json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let plain = inv_freq(64, 500_000.0, None);
        let scaled = inv_freq(64, 500_000.0, Some(&s));
        assert_eq!(scaled[0], plain[0], "high frequencies are kept");
        let last = plain.len() - 1;
        assert!(
            (scaled[last] - plain[last] / 32.0).abs() < 1e-18,
            "low frequencies divided by the factor"
        );
        assert!(scaled.iter().zip(&plain).all(|(s, p)| s <= p && *s >= p / 32.0));
        assert!(validate(&serde_json::json!({"rope_type": "yarn", "factor": 4.0})).is_err());
        assert!(validate(&serde_json::json!({"rope_type": "llama3", "factor": 8.0})).is_err());
    }
}
