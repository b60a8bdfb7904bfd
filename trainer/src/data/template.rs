//! Prompt templates: how a question becomes the prompt text the model continues, and how a worked
//! solution becomes a supervised target.
//!
//! Three kinds: the built-in `plain` format of the from-scratch models, a format string of the
//! user's own (`{ prompt = "...", target = "..." }`), and a chat template — the model's own
//! (`model`: its `chat_template`, rendered as transformers' `apply_chat_template` does) or the
//! built-in ChatML string (`chatml`, which adds no default system turn).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::chat_template::{ChatTemplate, ChatTemplateError, Message};

/// The prompt format as written in a run file (`data.template`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Template {
    /// `"plain"`, `"chatml"` or `"model"`.
    Named(NamedTemplate),
    /// `{ prompt = "Q: {question}\nA:", target = " {solution}<eos>" }`.
    Format(FormatTemplate),
}

/// The built-in templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedTemplate {
    /// `Q: {question}\nA:`, target ` {solution}<eos>` — the synthetic tasks' from-scratch models.
    Plain,
    /// A ChatML user turn without a system turn (`<|im_start|>user ... <|im_start|>assistant\n`).
    Chatml,
    /// The model's own `chat_template` (`chat_template.jinja` or `tokenizer_config.json` beside
    /// the tokenizer), with the generation prompt.
    Model,
}

/// A format string pair: `{question}` and `{solution}` are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatTemplate {
    /// Prompt text; `{question}` is replaced by the question.
    pub prompt: String,
    /// Supervised target appended after the prompt; `{solution}` is replaced by the solution.
    pub target: String,
}

impl Template {
    /// The default: `plain`.
    pub const PLAIN: Self = Self::Named(NamedTemplate::Plain);

    /// Whether the template is a chat conversation (the user turn gets `data.instruction`).
    pub fn is_chat(&self) -> bool {
        matches!(self, Self::Named(NamedTemplate::Chatml | NamedTemplate::Model))
    }
}

impl<'de> Deserialize<'de> for Template {
    // A string names a built-in template, a table is a format pair; explicit dispatch so the inner
    // error ("unknown field `promt`") reaches the user instead of "did not match any variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = toml::Value::deserialize(d)?;
        match v {
            toml::Value::String(_) => v.try_into().map(Self::Named).map_err(|e| {
                D::Error::custom(format!(
                    "{} (expected \"plain\", \"chatml\", \"model\" or {{ prompt = \"...\", target = \"...\" }})",
                    e.message()
                ))
            }),
            toml::Value::Table(_) => v
                .try_into()
                .map(Self::Format)
                .map_err(|e| D::Error::custom(e.message())),
            _ => Err(D::Error::custom(
                "expected \"plain\", \"chatml\", \"model\" or { prompt = \"...\", target = \"...\" }",
            )),
        }
    }
}

/// Resolved prompt format: renders prompts and supervised targets.
#[derive(Debug)]
pub struct PromptFormat {
    kind: Kind,
    /// A system turn for chat templates (`None`: the template's own default, if any).
    system: Option<String>,
    /// Text appended to the question in a chat template's user turn (empty: none).
    instruction: String,
}

#[derive(Debug)]
enum Kind {
    Format(FormatTemplate),
    Chat(Box<ChatTemplate>),
}

/// The ChatML string `chatml` stands for: no default system turn.
const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

impl PromptFormat {
    /// Resolves `template`; `tokenizer_dir` holds the model's `tokenizer_config.json` (needed by
    /// `model`). A chat template is rendered once on a probe conversation here, so a template that
    /// fails to parse or render is an error before any work.
    pub fn resolve(
        template: &Template,
        system: Option<String>,
        instruction: String,
        tokenizer_dir: &Path,
    ) -> Result<Self, ChatTemplateError> {
        let kind = match template {
            Template::Named(NamedTemplate::Plain) => Kind::Format(FormatTemplate {
                prompt: "Q: {question}\nA:".into(),
                target: " {solution}<eos>".into(),
            }),
            Template::Format(f) => Kind::Format(f.clone()),
            Template::Named(NamedTemplate::Chatml) => Kind::Chat(Box::new(ChatTemplate::new(
                CHATML,
                Default::default(),
                "built-in chatml",
            )?)),
            Template::Named(NamedTemplate::Model) => Kind::Chat(Box::new(ChatTemplate::from_dir(tokenizer_dir)?)),
        };
        let format = Self {
            kind,
            system,
            instruction,
        };
        if let Kind::Chat(t) = &format.kind {
            format.try_target("What is 1 + 1?", "1 + 1 = 2 #### 2").map_err(|e| {
                ChatTemplateError::new(t.origin(), format!("renders no usable prompt/target pair: {e}"))
            })?;
        }
        Ok(format)
    }

    /// Prompt text for `question`.
    pub fn prompt(&self, question: &str) -> String {
        match &self.kind {
            Kind::Format(f) => f.prompt.replace("{question}", question),
            // resolve() rendered a probe conversation; chat templates do not branch on content
            Kind::Chat(t) => t
                .render(&self.messages(question, None), true)
                .unwrap_or_else(|e| panic!("{e} (it rendered at startup)")),
        }
    }

    /// Prompt text for a problem: its own conversation when it has one and the template is a
    /// chat template (rendered as is, with the generation prompt; `data.system` is added only
    /// when the conversation has no system turn), else [`Self::prompt`] of its question.
    pub fn problem_prompt(&self, p: &super::Problem) -> String {
        match (&self.kind, &p.messages) {
            (Kind::Chat(t), Some(conversation)) => {
                let mut m = Vec::with_capacity(conversation.len() + 1);
                if let Some(s) = self
                    .system
                    .as_ref()
                    .filter(|_| conversation.iter().all(|x| x.role != "system"))
                {
                    m.push(Message::new("system", s));
                }
                m.extend(conversation.iter().cloned());
                t.render(&m, true)
                    .unwrap_or_else(|e| panic!("{e} (on a dataset conversation)"))
            }
            _ => self.prompt(&p.question),
        }
    }

    /// The text a supervised target appends after [`Self::prompt`] (solution and end marker).
    pub fn target(&self, question: &str, solution: &str) -> String {
        self.try_target(question, solution)
            .unwrap_or_else(|e| panic!("{e} (it rendered at startup)"))
    }

    /// A chat template's target is the full conversation minus the generation prompt, trailing
    /// whitespace after the end marker dropped (generation stops at the marker).
    fn try_target(&self, question: &str, solution: &str) -> Result<String, String> {
        match &self.kind {
            Kind::Format(f) => Ok(f.target.replace("{solution}", solution)),
            Kind::Chat(t) => {
                let prompt = t
                    .render(&self.messages(question, None), true)
                    .map_err(|e| e.to_string())?;
                let full = t
                    .render(&self.messages(question, Some(solution)), false)
                    .map_err(|e| e.to_string())?;
                let rest = full
                    .strip_prefix(&prompt)
                    .ok_or("the conversation with an answer does not begin with the generation prompt")?;
                if !rest.contains(solution) {
                    return Err("the conversation with an answer does not show the answer".into());
                }
                Ok(rest.trim_end().to_string())
            }
        }
    }

    /// System turn (if set), the user turn (question + instruction), and the answer (if any).
    fn messages(&self, question: &str, answer: Option<&str>) -> Vec<Message> {
        let mut m = vec![];
        if let Some(s) = &self.system {
            m.push(Message::new("system", s));
        }
        let user = if self.instruction.is_empty() {
            question.to_string()
        } else {
            format!("{question}\n{}", self.instruction)
        };
        m.push(Message::new("user", &user));
        if let Some(a) = answer {
            m.push(Message::new("assistant", a));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_format_strings() {
        let p = PromptFormat::resolve(&Template::PLAIN, None, String::new(), Path::new(".")).unwrap();
        assert_eq!(p.prompt("1+2=?"), "Q: 1+2=?\nA:");
        assert_eq!(p.target("1+2=?", "#### 3"), " #### 3<eos>");
        let f = Template::Format(FormatTemplate {
            prompt: "Problem: {question}\nSolution:".into(),
            target: " {solution}</s>".into(),
        });
        let p = PromptFormat::resolve(&f, None, String::new(), Path::new(".")).unwrap();
        assert_eq!(p.prompt("x"), "Problem: x\nSolution:");
        assert_eq!(p.target("x", "y"), " y</s>");
    }

    #[test]
    fn chatml_is_the_former_built_in_string() {
        let instr = "Solve step by step, then give the final answer on its own line as '#### <number>'.";
        let p = PromptFormat::resolve(
            &Template::Named(NamedTemplate::Chatml),
            None,
            instr.into(),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            p.prompt("2+2?"),
            format!("<|im_start|>user\n2+2?\n{instr}<|im_end|>\n<|im_start|>assistant\n")
        );
        assert_eq!(p.target("2+2?", "#### 4"), "#### 4<|im_end|>");
    }

    #[test]
    fn template_key_parses_names_and_tables_and_names_errors() {
        #[derive(Deserialize)]
        struct T {
            template: Template,
        }
        let t: T = toml::from_str("template = \"model\"").unwrap();
        assert_eq!(t.template, Template::Named(NamedTemplate::Model));
        let t: T = toml::from_str("template = { prompt = \"{question}\", target = \"{solution}\" }").unwrap();
        assert!(matches!(t.template, Template::Format(_)));
        let e = toml::from_str::<T>("template = \"jinja\"").err().unwrap().to_string();
        assert!(e.contains("jinja") && e.contains("model"), "{e}");
        let e = toml::from_str::<T>("template = { promt = \"x\", target = \"y\" }")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("promt"), "{e}");
    }
}
