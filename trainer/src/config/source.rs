//! Where problems come from: a synthetic task or a JSONL file (`data.train`, `data.eval`,
//! `sentinel.domains[].source`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::columns::FieldNames;
use crate::data::jsonl::JsonlFormat;
use crate::data::tasks::SyntheticTask;

/// A synthetic task (a table with `kind`) or a JSONL file (a table with `path`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SourceSpec {
    /// `{ kind = "arithmetic", ... }`
    Synthetic(SyntheticTask),
    /// `{ path = "...", format = "gsm8k" }`
    Jsonl(JsonlSpec),
}

impl<'de> Deserialize<'de> for SourceSpec {
    // Explicit dispatch instead of serde's untagged matching, so the inner error ("unknown field
    // `digitz`") reaches the user instead of "did not match any variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = toml::Value::deserialize(d)?;
        let t = v
            .as_table()
            .ok_or_else(|| D::Error::custom("expected a table with 'kind' (synthetic task) or 'path' (JSONL file)"))?;
        if t.contains_key("kind") {
            v.try_into()
                .map(Self::Synthetic)
                .map_err(|e| D::Error::custom(e.message()))
        } else if t.contains_key("path") {
            v.try_into().map(Self::Jsonl).map_err(|e| D::Error::custom(e.message()))
        } else {
            Err(D::Error::custom(
                "expected 'kind' (synthetic task: arithmetic, countdown) or 'path' (JSONL file)",
            ))
        }
    }
}

/// A JSONL dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlSpec {
    /// The file.
    pub path: PathBuf,
    /// Field layout.
    #[serde(default = "d_format")]
    pub format: JsonlFormat,
    /// `data_source` label of rows that carry none (default: the parent folder's name).
    #[serde(default)]
    pub data_source: Option<String>,
    /// Column names of TRL/verl-style rows (`{ prompt = "input", answer = "target" }`); setting
    /// any makes `auto` read TRL's layout. Not used by gsm8k/math/svamp.
    #[serde(default, skip_serializing_if = "is_default_fields")]
    pub fields: FieldNames,
}

fn is_default_fields(f: &FieldNames) -> bool {
    *f == FieldNames::default()
}

impl JsonlSpec {
    /// Checks that configured column names apply to the format.
    pub fn validate(&self) -> Result<(), String> {
        let fixed = matches!(self.format, JsonlFormat::Gsm8k | JsonlFormat::Math | JsonlFormat::Svamp);
        if fixed && !is_default_fields(&self.fields) {
            return Err(format!(
                "'fields' applies to the trl, verl and auto formats, not to {:?} (whose columns are fixed)",
                self.format
            ));
        }
        Ok(())
    }
}

fn d_format() -> JsonlFormat {
    JsonlFormat::Auto
}
