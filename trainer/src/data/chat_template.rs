//! A model's own chat template (Jinja), rendered the way transformers' `apply_chat_template` does:
//! `trim_blocks` and `lstrip_blocks` on, loop controls, Python string/dict/list methods
//! (`.strip()`, `.startswith()`, `.items()`: minijinja-contrib's pycompat), `raise_exception`,
//! `strftime_now`, and the tokenizer's special tokens (`bos_token`, `eos_token`, ...) as variables.
//! Tested against transformers itself (`scripts/oracle/chat_template_golden.py`).

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::value::Serde;
use minijinja::{Environment, Error, ErrorKind, Value, context};
use serde::Serialize;

/// A template that could not be read, parsed or rendered; names the file.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: chat template: {msg}")]
pub struct ChatTemplateError {
    origin: String,
    msg: String,
}

impl ChatTemplateError {
    /// An error about the template from `origin`.
    pub fn new(origin: &str, msg: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            msg: msg.into(),
        }
    }
}

/// One conversation turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A turn.
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A parsed chat template and the special-token variables it sees.
pub struct ChatTemplate {
    env: Environment<'static>,
    special_tokens: BTreeMap<String, String>,
    origin: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChatTemplate({})", self.origin)
    }
}

const SPECIAL_TOKEN_KEYS: [&str; 6] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "pad_token",
    "sep_token",
    "cls_token",
];

impl ChatTemplate {
    /// Parses `source`; `origin` names it in errors.
    pub fn new(
        source: &str,
        special_tokens: BTreeMap<String, String>,
        origin: &str,
    ) -> Result<Self, ChatTemplateError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("default delimiters");
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        // Llama 3.x templates print today's date; fixed here so prompts (and runs) are reproducible
        env.add_function("strftime_now", |_fmt: String| -> Value { Value::from("26 Jul 2024") });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| ChatTemplateError::new(origin, format!("does not parse: {e:#}")))?;
        Ok(Self {
            env,
            special_tokens,
            origin: origin.into(),
        })
    }

    /// The model's template from `dir`: `chat_template.jinja`, else `tokenizer_config.json`'s
    /// `chat_template` (a string, or a list of named templates of which `default` is used).
    pub fn from_dir(dir: &Path) -> Result<Self, ChatTemplateError> {
        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: serde_json::Value = match std::fs::read_to_string(&cfg_path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| ChatTemplateError::new(&cfg_path.display().to_string(), e.to_string()))?,
            Err(_) => serde_json::Value::Null,
        };
        let specials = special_tokens(&cfg);
        let jinja = dir.join("chat_template.jinja");
        if let Ok(source) = std::fs::read_to_string(&jinja) {
            return Self::new(&source, specials, &jinja.display().to_string());
        }
        let origin = cfg_path.display().to_string();
        let source = match &cfg["chat_template"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(named) => named
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str())
                .ok_or_else(|| ChatTemplateError::new(&origin, "no template named 'default' in the list"))?
                .to_string(),
            _ if cfg.is_null() => {
                return Err(ChatTemplateError::new(
                    &origin,
                    "not found: `data.template = \"model\"` needs the model's tokenizer_config.json (or chat_template.jinja) beside its tokenizer.json",
                ));
            }
            _ => return Err(ChatTemplateError::new(&origin, "has no 'chat_template'")),
        };
        Self::new(&source, specials, &origin)
    }

    /// Where the template came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The conversation as text; `add_generation_prompt` opens the assistant's turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, ChatTemplateError> {
        let tmpl = self.env.get_template("chat").expect("added in new()");
        let ctx = context! {
            messages => Value::from(Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            ..Value::from(Serde(&self.special_tokens))
        };
        tmpl.render(ctx)
            .map_err(|e| ChatTemplateError::new(&self.origin, format!("does not render: {e:#}")))
    }
}

/// `bos_token`, `eos_token`, ... of a `tokenizer_config.json` (a string or `{ "content": ... }`).
fn special_tokens(cfg: &serde_json::Value) -> BTreeMap<String, String> {
    SPECIAL_TOKEN_KEYS
        .iter()
        .filter_map(|&k| {
            let v = &cfg[k];
            let s = v.as_str().or_else(|| v["content"].as_str())?;
            Some((k.to_string(), s.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_render_errors_name_the_origin() {
        let e = ChatTemplate::new("{% for m in messages %}", BTreeMap::new(), "x/tokenizer_config.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x/tokenizer_config.json") && e.contains("does not parse"),
            "{e}"
        );
        let t = ChatTemplate::new(
            "{{ raise_exception('roles must alternate') }}",
            BTreeMap::new(),
            "t.jinja",
        )
        .unwrap();
        let e = t.render(&[], true).unwrap_err().to_string();
        assert!(e.contains("t.jinja") && e.contains("roles must alternate"), "{e}");
    }

    #[test]
    fn missing_template_names_the_file() {
        let dir = std::env::temp_dir().join(format!("entrl_chat_tmpl_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = ChatTemplate::from_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("tokenizer_config.json") && e.contains("not found"), "{e}");
        std::fs::write(dir.join("tokenizer_config.json"), r#"{"eos_token": "</s>"}"#).unwrap();
        let e = ChatTemplate::from_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("has no 'chat_template'"), "{e}");
        std::fs::write(
            dir.join("tokenizer_config.json"),
            r#"{"eos_token": {"content": "</s>"}, "chat_template": "{{ messages[0].content | trim }}{{ eos_token }}"}"#,
        )
        .unwrap();
        let t = ChatTemplate::from_dir(&dir).unwrap();
        assert_eq!(t.render(&[Message::new("user", " hi ")], false).unwrap(), "hi</s>");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
