//! Run configuration: one TOML file per run, each component owning its section.
//!
//! Two stages (ripgrep's lowargs/hiargs): [`RunFile`] is what the user wrote, deserialised with
//! unknown keys rejected and errors carrying the key path (`rl.epsilon_hgh: unknown field`);
//! [`RunFile::validate`] checks ranges and names the key. `--set rl.beta=0.04` overrides edit the
//! TOML document before it is deserialised, so they are checked exactly like the file.

mod alarms;
mod decode;
mod edis_sweep;
mod entropy;
mod schema;
mod sentinel;
mod sia;
mod source;

use std::path::Path;

pub use alarms::*;
pub use decode::*;
pub use edis_sweep::*;
pub use entropy::*;
pub use schema::*;
pub use sentinel::*;
pub use sia::*;

pub use crate::error::ConfigError;

impl RunFile {
    /// Reads `path`, applies `overrides` (`key.path=value`), deserialises and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses TOML text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError(format!("{origin}: {e}")))?;
        for o in overrides {
            apply_override(&mut doc, o).map_err(|m| ConfigError(format!("--set {o}: {m}")))?;
        }
        let de = toml::Value::Table(doc);
        let run: RunFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ConfigError(format!("{origin}: key '{path}': {}", e.into_inner()))
        })?;
        run.validate().map_err(|m| ConfigError(format!("{origin}: {m}")))?;
        Ok(run)
    }

    /// The resolved config as TOML (saved in the run directory).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

/// Sets `a.b.c = value` in a TOML table. The value is parsed as TOML (`0.04`, `true`, `"x"`,
/// `[1, 2]`); anything that does not parse is taken as a string.
pub fn apply_override(doc: &mut toml::Table, kv: &str) -> Result<(), String> {
    let (key, raw) = kv.split_once('=').ok_or("expected key=value")?;
    let value: toml::Value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut table = doc;
    for p in &parts[..parts.len() - 1] {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| format!("'{p}' is not a table"))?;
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
seed = 1
output_dir = "checkpoints/t"
[model]
config = "configs/model/tiny.toml"
[data.train]
kind = "arithmetic"
digits = 2
operands = 2
[rl]
steps = 3
"#;

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let e = RunFile::parse(&format!("{BASE}epsilon_hgh = 0.3\n"), "x.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml") && e.contains("rl.epsilon_hgh") || e.contains("epsilon_hgh"),
            "{e}"
        );
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn wrong_type_and_range_name_the_key() {
        let e = RunFile::parse(BASE, "x.toml", &["rl.beta=\"high\"".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("rl.beta"), "{e}");
        let e = RunFile::parse(BASE, "x.toml", &["rl.epsilon=1.5".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("rl.epsilon") && e.contains("1.5"), "{e}");
        let e = RunFile::parse(BASE, "x.toml", &["rl.num_generations=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("rl.num_generations"), "{e}");
    }

    #[test]
    fn format_templates_need_their_placeholders() {
        let t = |v: &str| RunFile::parse(BASE, "x.toml", &[format!("data.template={v}")]);
        let ok = t("{ prompt = \"Problem: {question}\", target = \" {solution}</s>\" }").unwrap();
        assert!(matches!(ok.data.template, crate::data::Template::Format(_)));
        let e = t("{ prompt = \"Problem:\", target = \"{solution}\" }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.template.prompt") && e.contains("{question}"), "{e}");
        let e = t("{ prompt = \"{question}\", target = \"x\" }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.template.target"), "{e}");
    }

    #[test]
    fn overrides_apply_and_round_trip() {
        let r = RunFile::parse(BASE, "x.toml", &["rl.beta=0.04".into(), "rl.loss_type=dapo".into()]).unwrap();
        assert_eq!(r.rl.beta, 0.04);
        assert_eq!(r.rl.loss_type, crate::objectives::LossType::Dapo);
        let again = RunFile::parse(&r.to_toml(), "resolved", &[]).unwrap();
        assert_eq!(again, r);
    }
}
#[cfg(test)]
mod source_errors {
    #[test]
    fn data_source_errors_name_the_inner_key() {
        let text =
            "output_dir = 'x'\n[model]\nconfig = 'c'\n[data.train]\nkind = 'arithmetic'\ndigitz = 2\noperands = 2\n";
        let e = super::RunFile::parse(text, "x.toml", &[]).unwrap_err().to_string();
        assert!(e.contains("data.train") && e.contains("digitz"), "{e}");
    }
}
