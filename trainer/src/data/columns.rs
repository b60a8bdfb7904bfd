//! Datasets as TRL and verl users have them: a JSONL row with a `prompt` (text, or a chat
//! conversation), a gold answer somewhere in the row, and any other columns, which are kept for
//! reward programs. Every column name is configurable (`fields`), dotted for nested objects
//! (`reward_model.ground_truth`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Message, Problem};

/// Column names of a TRL-style or verl-style row; unset ones take the format's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldNames {
    /// The prompt: a string, or a list of `{role, content}` turns (TRL: `prompt`, else
    /// `messages`; verl: `prompt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The gold answer, a string or a number (TRL: the first of `answer`, `solution`,
    /// `ground_truth`; verl: `reward_model.ground_truth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// A worked solution for supervised warm-up (default: none; the row's last assistant turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    /// The row's `data_source` (default `data_source`; rows without it get the file's label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<String>,
}

/// Which defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// TRL's columns.
    Trl,
    /// verl's columns.
    Verl,
}

/// The value at a dotted path.
fn at<'a>(row: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(row, |v, k| v.get(k)).filter(|v| !v.is_null())
}

/// A gold answer as text: strings as they are, integers without a decimal point, a list of
/// answers joined by `, ` (verl's lists), other JSON as written.
fn answer_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            _ => n.to_string(),
        },
        Value::Array(xs) => xs.iter().map(answer_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A conversation: a list of `{role, content}` objects.
fn conversation(v: &Value, field: &str) -> Result<Vec<Message>, String> {
    let turns = v
        .as_array()
        .ok_or_else(|| format!("field '{field}' is neither text nor a list of turns"))?;
    turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let s = |k: &str| {
                t.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("field '{field}[{i}].{k}' is missing or not text"))
            };
            Ok(Message::new(s("role")?, s("content")?))
        })
        .collect()
}

/// The prompt and answer columns of a row: the configured names, else the flavour's defaults.
fn prompt_and_answer_fields(row: &Value, flavour: Flavour, names: &FieldNames) -> (String, String) {
    let prompt = match (&names.prompt, flavour) {
        (Some(f), _) => f.clone(),
        (None, Flavour::Trl) if at(row, "prompt").is_none() && at(row, "messages").is_some() => "messages".into(),
        (None, _) => "prompt".into(),
    };
    let answer = match (&names.answer, flavour) {
        (Some(f), _) => f.clone(),
        (None, Flavour::Verl) => "reward_model.ground_truth".into(),
        (None, Flavour::Trl) => ["answer", "solution", "ground_truth"]
            .into_iter()
            .find(|k| at(row, k).is_some())
            .unwrap_or("answer")
            .into(),
    };
    (prompt, answer)
}

/// A prompt as (question, conversation, supervised target): text is the question itself; a
/// conversation's last user turn is the question, and a trailing assistant turn (TRL's
/// `messages`) is the target, not part of the prompt.
fn read_prompt(prompt: &Value, field: &str) -> Result<(String, Option<Vec<Message>>, String), String> {
    if let Value::String(s) = prompt {
        return Ok((s.clone(), None, String::new()));
    }
    let mut turns = conversation(prompt, field)?;
    let target = match turns.last() {
        Some(t) if t.role == "assistant" => turns.pop().map(|t| t.content),
        _ => None,
    };
    let question = turns
        .iter()
        .rev()
        .find(|t| t.role == "user")
        .map(|t| t.content.clone())
        .ok_or_else(|| format!("field '{field}' has no user turn"))?;
    Ok((question, Some(turns), target.unwrap_or_default()))
}

/// Reads one row; `label` is the data_source of rows that name none.
pub fn parse_row(row: &Value, flavour: Flavour, names: &FieldNames, label: &str) -> Result<Problem, String> {
    let (prompt_field, answer_field) = prompt_and_answer_fields(row, flavour, names);
    let source_field = names.data_source.as_deref().unwrap_or("data_source");
    let prompt = at(row, &prompt_field).ok_or_else(|| format!("missing field '{prompt_field}'"))?;
    let answer = at(row, &answer_field).ok_or_else(|| format!("missing field '{answer_field}'"))?;
    let (question, messages, mut solution) = read_prompt(prompt, &prompt_field)?;
    if let Some(f) = &names.solution {
        solution = answer_text(at(row, f).ok_or_else(|| format!("missing field '{f}'"))?);
    }
    let data_source = match at(row, source_field) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(format!("field '{source_field}' is not text")),
        None => label.to_string(),
    };
    let extra: Map<String, Value> = row
        .as_object()
        .ok_or("a row must be a JSON object")?
        .iter()
        .filter(|(k, _)| **k != prompt_field)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Problem {
        question,
        answer: answer_text(answer),
        solution,
        data_source,
        messages,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trl_text_and_conversation() {
        let names = FieldNames::default();
        let p = parse_row(
            &json!({"prompt": "2+2?", "solution": 4, "level": 1}),
            Flavour::Trl,
            &names,
            "f",
        )
        .unwrap();
        assert_eq!(
            (p.question.as_str(), p.answer.as_str(), p.data_source.as_str()),
            ("2+2?", "4", "f")
        );
        assert_eq!(p.extra["level"], 1);
        assert!(p.messages.is_none() && !p.extra.contains_key("prompt"));
        let row = json!({"messages": [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "#### 6"}], "answer": "6"});
        let p = parse_row(&row, Flavour::Trl, &names, "f").unwrap();
        assert_eq!((p.question.as_str(), p.solution.as_str()), ("3+3?", "#### 6"));
        assert_eq!(p.messages.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn verl_columns_and_custom_names() {
        let row = json!({"data_source": "openai/gsm8k", "prompt": [{"role": "user", "content": "Q"}],
            "ability": "math", "reward_model": {"style": "rule", "ground_truth": "72"}, "extra_info": {"index": 3}});
        let p = parse_row(&row, Flavour::Verl, &FieldNames::default(), "f").unwrap();
        assert_eq!((p.answer.as_str(), p.data_source.as_str()), ("72", "openai/gsm8k"));
        assert_eq!(p.extra["extra_info"]["index"], 3);
        let names = FieldNames {
            prompt: Some("input".into()),
            answer: Some("target".into()),
            ..Default::default()
        };
        let p = parse_row(
            &json!({"input": "MAWPS q", "target": 12.5}),
            Flavour::Trl,
            &names,
            "mawps",
        )
        .unwrap();
        assert_eq!((p.question.as_str(), p.answer.as_str()), ("MAWPS q", "12.5"));
        let e = parse_row(&json!({"input": "q"}), Flavour::Trl, &names, "m").unwrap_err();
        assert_eq!(e, "missing field 'target'");
        let e = parse_row(
            &json!({"prompt": [{"role": "user"}], "answer": 1}),
            Flavour::Trl,
            &FieldNames::default(),
            "m",
        )
        .unwrap_err();
        assert!(e.contains("prompt[0].content"), "{e}");
    }
}
