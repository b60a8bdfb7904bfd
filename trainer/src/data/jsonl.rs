//! JSONL datasets in the layouts of GSM8K, MATH / MATH-500 and SVAMP (shared/ASSETS.md), and in
//! TRL's and verl's columns with configurable names ([`super::columns`]).
//! A malformed line is an error naming the file and line; nothing is silently skipped.

use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::columns::{FieldNames, Flavour, parse_row};
use super::{Problem, ProblemSource};

/// Field layout of a JSONL file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonlFormat {
    /// `question`, `answer` (worked solution ending in `#### N`).
    Gsm8k,
    /// `problem`, `solution`, optional `answer` (MATH-500); else the last `\boxed{}` of `solution`.
    Math,
    /// `Body`, `Question`, `Answer` (number).
    Svamp,
    /// TRL: `prompt` (text or chat turns) or `messages`, the gold in `answer`/`solution`/`ground_truth`.
    Trl,
    /// verl: `data_source`, `prompt` (chat turns), `reward_model.ground_truth`, `extra_info`.
    Verl,
    /// Decide from each line's fields (TRL's when column names are configured).
    Auto,
}

/// An error naming the file and (1-based) line.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {msg}")]
pub struct DatasetError {
    /// The file.
    pub path: String,
    /// 1-based line number (0 for whole-file errors).
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

fn field<'a>(v: &'a Value, k: &str) -> Result<&'a Value, String> {
    v.get(k).ok_or_else(|| format!("missing field '{k}'"))
}

fn text(v: &Value, k: &str) -> Result<String, String> {
    field(v, k)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("field '{k}' is not a string"))
}

/// GSM8K solutions carry calculator annotations `<<48/2=24>>`; they are removed.
fn strip_calc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("<<") {
        out.push_str(&rest[..i]);
        match rest[i..].find(">>") {
            Some(j) => rest = &rest[i + j + 2..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn parse_line(v: &Value, fmt: JsonlFormat, names: &FieldNames, source: &str) -> Result<Problem, String> {
    let fmt = match fmt {
        JsonlFormat::Auto if *names != FieldNames::default() => JsonlFormat::Trl,
        JsonlFormat::Auto if v.get("question").is_some() && v.get("answer").is_some() => JsonlFormat::Gsm8k,
        JsonlFormat::Auto if v.get("problem").is_some() => JsonlFormat::Math,
        JsonlFormat::Auto if v.get("Body").is_some() => JsonlFormat::Svamp,
        JsonlFormat::Auto if v.get("reward_model").is_some() => JsonlFormat::Verl,
        JsonlFormat::Auto if v.get("prompt").is_some() || v.get("messages").is_some() => JsonlFormat::Trl,
        JsonlFormat::Auto => {
            return Err(
                "cannot tell the format (expected question/answer, problem/solution, Body/Question/Answer, \
                 prompt or messages (TRL), or reward_model (verl); or set 'fields')"
                    .into(),
            );
        }
        f => f,
    };
    let data_source = source.to_string();
    match fmt {
        JsonlFormat::Trl => parse_row(v, Flavour::Trl, names, source),
        JsonlFormat::Verl => parse_row(v, Flavour::Verl, names, source),
        JsonlFormat::Gsm8k => {
            let sol = strip_calc(&text(v, "answer")?);
            let gold = entrl_rewards::extract_hash(&sol)
                .ok_or("answer has no '#### N' line")?
                .replace(',', "");
            Ok(Problem {
                question: text(v, "question")?,
                answer: gold,
                solution: sol,
                data_source,

                ..Default::default()
            })
        }
        JsonlFormat::Math => {
            let sol = text(v, "solution")?;
            let gold = match v.get("answer") {
                Some(Value::String(a)) => a.clone(),
                Some(a @ Value::Number(_)) => a.to_string(),
                _ => entrl_rewards::extract_boxed(&sol).ok_or("no 'answer' field and no \\boxed{} in 'solution'")?,
            };
            let solution = format!("{}\n#### {gold}", sol.trim());
            Ok(Problem {
                question: text(v, "problem")?,
                answer: gold,
                solution,
                data_source,

                ..Default::default()
            })
        }
        JsonlFormat::Svamp => {
            let ans = field(v, "Answer")?.as_f64().ok_or("field 'Answer' is not a number")?;
            let gold = if ans.fract() == 0.0 {
                format!("{}", ans as i64)
            } else {
                ans.to_string()
            };
            let q = format!("{} {}", text(v, "Body")?.trim(), text(v, "Question")?.trim());
            Ok(Problem {
                question: q,
                answer: gold,
                solution: String::new(),
                data_source,

                ..Default::default()
            })
        }
        JsonlFormat::Auto => unreachable!("resolved above"),
    }
}

/// A whole JSONL file in memory, served in a seeded per-epoch shuffled order.
#[derive(Debug, Clone)]
pub struct JsonlSource {
    /// Problems in file order.
    pub problems: Vec<Problem>,
    /// Shuffle seed (`None`: file order every epoch).
    pub shuffle_seed: Option<u64>,
}

impl JsonlSource {
    /// Reads `path`; `data_source` labels the problems (default: the file's parent folder name).
    pub fn load(
        path: &Path,
        fmt: JsonlFormat,
        names: &FieldNames,
        data_source: Option<&str>,
        shuffle_seed: Option<u64>,
    ) -> Result<Self, DatasetError> {
        let p = path.display().to_string();
        let err = |line, msg: String| DatasetError {
            path: p.clone(),
            line,
            msg,
        };
        let content = std::fs::read_to_string(path).map_err(|e| err(0, e.to_string()))?;
        let label = data_source.map(str::to_string).unwrap_or_else(|| {
            path.parent()
                .and_then(|d| d.file_name())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "jsonl".into())
        });
        let mut problems = vec![];
        for (k, line) in content.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line).map_err(|e| err(k + 1, format!("invalid JSON: {e}")))?;
            problems.push(parse_line(&v, fmt, names, &label).map_err(|m| err(k + 1, m))?);
        }
        if problems.is_empty() {
            return Err(err(0, "no problems in file".into()));
        }
        Ok(Self { problems, shuffle_seed })
    }
}

impl ProblemSource for JsonlSource {
    fn get(&self, i: u64) -> Problem {
        let n = self.problems.len() as u64;
        let (epoch, k) = (i / n, (i % n) as usize);
        match self.shuffle_seed {
            None => self.problems[k].clone(),
            Some(seed) => {
                let mut order: Vec<usize> = (0..self.problems.len()).collect();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(
                    seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ));
                self.problems[order[k]].clone()
            }
        }
    }
    fn len(&self) -> Option<usize> {
        Some(self.problems.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("entrl_jsonl_{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("test.jsonl");
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn reads_the_three_layouts() {
        let p = write(
            "ok",
            concat!(
                r#"{"question": "Q1", "answer": "48/2 = <<48/2=24>>24 clips\n#### 1,024", "idx": 0}"#,
                "\n",
                r#"{"problem": "P", "solution": "so \\boxed{\\frac{1}{2}}", "answer": "\\frac{1}{2}"}"#,
                "\n",
                r#"{"problem": "P", "solution": "so \\boxed{7}"}"#,
                "\n",
                r#"{"Body": "B.", "Question": "Q?", "Equation": "( 1 + 2 )", "Answer": 3.0}"#,
                "\n",
            ),
        );
        let s = JsonlSource::load(&p, JsonlFormat::Auto, &FieldNames::default(), Some("mix"), None).unwrap();
        let a: Vec<&str> = s.problems.iter().map(|p| p.answer.as_str()).collect();
        assert_eq!(a, ["1024", "\\frac{1}{2}", "7", "3"]);
        assert_eq!(s.problems[0].solution, "48/2 = 24 clips\n#### 1,024");
        assert_eq!(s.problems[3].question, "B. Q?");
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let p = write("bad_json", "{\"question\": \"a\", \"answer\": \"#### 1\"}\n{not json\n");
        let e = JsonlSource::load(&p, JsonlFormat::Auto, &FieldNames::default(), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("test.jsonl:2:") && e.contains("invalid JSON"), "{e}");
        let p = write("no_hash", "{\"question\": \"a\", \"answer\": \"1\"}\n");
        let e = JsonlSource::load(&p, JsonlFormat::Gsm8k, &FieldNames::default(), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("test.jsonl:1:") && e.contains("####"), "{e}");
        let p = write("missing", "{\"Body\": \"a\", \"Question\": \"b\"}\n");
        let e = JsonlSource::load(&p, JsonlFormat::Svamp, &FieldNames::default(), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(":1:") && e.contains("'Answer'"), "{e}");
    }

    #[test]
    fn shuffled_epochs_are_permutations_and_seeded() {
        let body: String = (0..10)
            .map(|i| format!("{{\"question\": \"q{i}\", \"answer\": \"#### {i}\"}}\n"))
            .collect();
        let s = JsonlSource::load(
            &write("shuffle", &body),
            JsonlFormat::Gsm8k,
            &FieldNames::default(),
            None,
            Some(3),
        )
        .unwrap();
        let mut e0: Vec<String> = (0..10).map(|i| s.get(i).answer).collect();
        let e1: Vec<String> = (10..20).map(|i| s.get(i).answer).collect();
        assert_ne!(e0, e1);
        e0.sort();
        assert_eq!(e0, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    }
}
