//! Chat templates render exactly as Hugging Face transformers' `apply_chat_template`
//! (tokenize=False) renders them: SmolLM2-135M-Instruct's own template and a template written to
//! exercise Jinja's whitespace control, slicing, namespaces, loop variables, `continue`, Python
//! string methods, filters and special tokens; several conversations with and without a system
//! turn and the generation prompt; and the prompt/target pairs a run file's `template = "model"`
//! makes for training. Fixture: `scripts/oracle/chat_template_golden.py` (transformers).

use std::path::{Path, PathBuf};

use entrl::data::PromptFormat;
use entrl::data::chat_template::{ChatTemplate, Message};
use entrl::data::template::{NamedTemplate, Template};
use serde_json::Value;

fn fixture() -> Value {
    let p = entrl_tests::root().join("tests/fixtures/chat_template_golden.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("json")
}

/// A model directory for `name`: SmolLM2's own, or a copy of its tokenizer_config.json with the
/// fixture's custom template (same special tokens, as transformers used them).
fn template_dir(name: &str, fx: &Value, test: &str) -> PathBuf {
    let smol = entrl_tests::smollm2_dir();
    if name == "smollm2" {
        return smol;
    }
    let dir = std::env::temp_dir().join(format!("entrl_chat_{test}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(smol.join("tokenizer_config.json")).unwrap()).unwrap();
    cfg["chat_template"] = fx["custom_template"].clone();
    std::fs::write(dir.join("tokenizer_config.json"), cfg.to_string()).unwrap();
    dir
}

fn messages(v: &Value) -> Vec<Message> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

#[test]
fn conversations_render_as_transformers_renders_them() {
    let fx = fixture();
    let cases = fx["renders"].as_array().unwrap();
    assert!(cases.len() >= 16);
    for (i, c) in cases.iter().enumerate() {
        let name = c["template"].as_str().unwrap();
        let t = ChatTemplate::from_dir(&template_dir(name, &fx, "renders")).unwrap();
        let ours = t
            .render(&messages(&c["messages"]), c["add_generation_prompt"].as_bool().unwrap())
            .unwrap();
        assert_eq!(ours, c["text"].as_str().unwrap(), "case {i} ({name})");
    }
}

#[test]
fn run_file_prompts_and_targets_match_transformers() {
    let fx = fixture();
    for (i, c) in fx["run_prompts"].as_array().unwrap().iter().enumerate() {
        let name = c["template"].as_str().unwrap();
        let format = PromptFormat::resolve(
            &Template::Named(NamedTemplate::Model),
            c["system"].as_str().map(String::from),
            c["instruction"].as_str().unwrap().into(),
            &template_dir(name, &fx, "prompts"),
        )
        .unwrap();
        let q = c["question"].as_str().unwrap();
        assert_eq!(format.prompt(q), c["prompt"].as_str().unwrap(), "prompt {i} ({name})");
        assert_eq!(
            format.target(q, c["solution"].as_str().unwrap()),
            c["target"].as_str().unwrap(),
            "target {i} ({name})"
        );
    }
}

#[test]
fn a_template_that_fails_is_an_error_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("entrl_chat_bad_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let resolve = |d: &Path| {
        PromptFormat::resolve(&Template::Named(NamedTemplate::Model), None, String::new(), d)
            .unwrap_err()
            .to_string()
    };
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"chat_template": "{% if messages %}"}"#,
    )
    .unwrap();
    let e = resolve(&dir);
    assert!(
        e.contains("tokenizer_config.json") && e.contains("does not parse"),
        "{e}"
    );
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"chat_template": "{{ raise_exception('System role not supported') }}"}"#,
    )
    .unwrap();
    let e = resolve(&dir);
    assert!(
        e.contains("tokenizer_config.json") && e.contains("System role not supported"),
        "{e}"
    );
    // a template that ignores the answer turn cannot make supervised targets
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"chat_template": "{{ messages[0].content }}"}"#,
    )
    .unwrap();
    let e = resolve(&dir);
    assert!(e.contains("usable prompt/target"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
