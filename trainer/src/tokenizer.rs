//! Tokenizers: any Hugging Face `tokenizer.json` (through the `tokenizers` crate), and the small
//! character-level tokenizer of the synthetic tasks, committed as `data/tokenizer.json`.

use std::path::Path;

use serde_json::json;

/// Errors naming the tokenizer file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct TokenizerError {
    /// The file (or "<text>" for text input).
    pub path: String,
    /// What went wrong.
    pub msg: String,
}

/// A loaded tokenizer plus the ids generation needs.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Vocabulary size including added tokens.
    pub vocab_size: usize,
}

impl Tokenizer {
    /// Loads `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| TokenizerError {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        Ok(Self::wrap(inner))
    }

    /// Parses a `tokenizer.json` document held in memory.
    pub fn from_json(text: &str) -> Result<Self, TokenizerError> {
        let inner: tokenizers::Tokenizer = text.parse().map_err(|e: tokenizers::Error| TokenizerError {
            path: "<text>".into(),
            msg: e.to_string(),
        })?;
        Ok(Self::wrap(inner))
    }

    fn wrap(inner: tokenizers::Tokenizer) -> Self {
        let vocab_size = inner.get_vocab_size(true);
        Self { inner, vocab_size }
    }

    /// Ids of `text`, special tokens written in the text recognised, nothing added around it.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    /// Text of `ids`; special tokens are kept when `keep_special`.
    pub fn decode(&self, ids: &[u32], keep_special: bool) -> String {
        self.inner.decode(ids, !keep_special).unwrap_or_default()
    }

    /// Id of a token string, if in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The ids that end a completion: the model config's `eos_token_id`s plus whichever of the
    /// usual end markers (`<eos>`, `<|im_end|>`, `<|endoftext|>`) this vocabulary has.
    pub fn end_ids(&self, config_eos: Vec<u32>) -> Vec<u32> {
        let mut eos = config_eos;
        for s in ["<eos>", "<|im_end|>", "<|endoftext|>"] {
            if let Some(id) = self.token_id(s)
                && !eos.contains(&id)
            {
                eos.push(id);
            }
        }
        eos
    }

    /// The string of one id.
    pub fn id_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

/// Special tokens of the synthetic tokenizer, in id order.
pub const SYNTHETIC_SPECIALS: [&str; 4] = ["<pad>", "<bos>", "<eos>", "<unk>"];

/// Characters of the synthetic tokenizer (after the specials): enough for arithmetic, countdown and
/// short worked solutions in plain English.
pub const SYNTHETIC_CHARS: &str = "0123456789 +-*/=()#,.:?\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ<>_'!;";

/// The synthetic character-level tokenizer as a `tokenizer.json` document: a WordLevel model over
/// single characters, every character its own pre-token, `Fuse` decoding (no spaces inserted).
pub fn synthetic_tokenizer_json() -> serde_json::Value {
    let mut vocab = serde_json::Map::new();
    let specials: Vec<_> = SYNTHETIC_SPECIALS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vocab.insert((*s).to_string(), json!(i));
            json!({"id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    for (i, c) in SYNTHETIC_CHARS.chars().enumerate() {
        vocab.insert(c.to_string(), json!(SYNTHETIC_SPECIALS.len() + i));
    }
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": specials,
        "normalizer": null,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": false},
        "post_processor": null,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    })
}

/// The tokenizer a model uses, by one rule everywhere (training, evaluation, `generate`): an
/// explicit path wins, else the model directory's `tokenizer.json`, else the synthetic tasks'
/// `data/tokenizer.json` (a from-scratch model).
pub fn tokenizer_json(explicit: Option<&Path>, model_dir: Option<&Path>) -> std::path::PathBuf {
    match (explicit, model_dir) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(dir)) => dir.join("tokenizer.json"),
        (None, None) => "data/tokenizer.json".into(),
    }
}

/// The folder of a tokenizer.json: where its `tokenizer_config.json` (chat template, special
/// tokens) lives.
pub fn tokenizer_dir(tokenizer_json: &Path) -> &Path {
    match tokenizer_json.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Files beside a model's tokenizer.json that a checkpoint carries along (chat template and
/// special tokens), copied when present.
const TOKENIZER_FILES: [&str; 3] = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"];

/// Copies the tokenizer files of `tokenizer_json`'s folder into `dir`.
pub fn copy_tokenizer_files(tokenizer_json: &Path, dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::copy(tokenizer_json, dir.join("tokenizer.json"))
        .with_context(|| format!("copying {}", tokenizer_json.display()))?;
    let src = tokenizer_dir(tokenizer_json);
    for name in &TOKENIZER_FILES[1..] {
        if src.join(name).exists() {
            std::fs::copy(src.join(name), dir.join(name)).with_context(|| format!("copying {name}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic() -> Tokenizer {
        Tokenizer::from_json(&synthetic_tokenizer_json().to_string()).unwrap()
    }

    #[test]
    fn synthetic_round_trips_text() {
        let t = synthetic();
        let s = "Q: 12+30=?\nA: 12+30=42 #### 42<eos>";
        let ids = t.encode(s);
        assert_eq!(
            ids.len(),
            s.len() - "<eos>".len() + 1,
            "one id per char plus one for <eos>"
        );
        assert_eq!(*ids.last().unwrap(), 2);
        assert_eq!(t.decode(&ids, true), s);
        assert_eq!(t.vocab_size, SYNTHETIC_SPECIALS.len() + SYNTHETIC_CHARS.chars().count());
    }

    #[test]
    fn committed_synthetic_tokenizer_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tokenizer.json");
        let on_disk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            on_disk,
            synthetic_tokenizer_json(),
            "regenerate with `entrl synthetic-tokenizer data/tokenizer.json`"
        );
    }

    #[test]
    fn unknown_chars_map_to_unk() {
        assert_eq!(synthetic().encode("é"), vec![3]);
    }
}
