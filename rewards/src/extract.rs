//! Answer extraction from model text and answer equivalence.
//!
//! Extractors: GSM8K's `#### N`, the last `\boxed{…}` (MATH), and the last number in the text.
//! Equivalence: numeric when both sides parse as numbers (commas, `$`, `%`, simple fractions),
//! otherwise a normalised-string comparison (LaTeX spacing and wrappers removed).

use serde::{Deserialize, Serialize};

/// Which extractor reads the model's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extractor {
    /// Text after the last `####` (GSM8K style), trimmed to its first line.
    Hash,
    /// Content of the last `\boxed{…}` (balanced braces).
    Boxed,
    /// The last number anywhere in the text.
    LastNumber,
    /// Content of the last `<answer>…</answer>` tag (the R1-style format of TRL/open-r1 tasks).
    AnswerTag,
    /// `####`, then `\boxed{}`, then the last number: the first that finds something.
    Auto,
}

impl Extractor {
    /// Extracted answer, or `None`.
    pub fn extract(self, text: &str) -> Option<String> {
        match self {
            Self::Hash => extract_hash(text),
            Self::Boxed => extract_boxed(text),
            Self::LastNumber => extract_last_number(text),
            Self::AnswerTag => extract_answer_tag(text),
            Self::Auto => extract_hash(text)
                .or_else(|| extract_boxed(text))
                .or_else(|| extract_last_number(text)),
        }
    }
}

/// Text after the last `####`, up to the end of that line, trimmed; `None` if empty or absent.
pub fn extract_hash(text: &str) -> Option<String> {
    let i = text.rfind("####")?;
    let rest = text[i + 4..].lines().next().unwrap_or("").trim();
    (!rest.is_empty()).then(|| rest.to_string())
}

/// Content of the last `\boxed{…}` with balanced braces (also `\fbox{…}`).
pub fn extract_boxed(text: &str) -> Option<String> {
    let start = text
        .rfind("\\boxed{")
        .map(|i| i + 7)
        .or_else(|| text.rfind("\\fbox{").map(|i| i + 6))?;
    let mut depth = 1usize;
    for (j, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let inner = text[start..start + j].trim();
                    return (!inner.is_empty()).then(|| inner.to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Content of the last `<answer>…</answer>`, trimmed; `None` if empty, absent or unclosed.
pub fn extract_answer_tag(text: &str) -> Option<String> {
    let start = text.rfind("<answer>")? + "<answer>".len();
    let end = text[start..].find("</answer>")?;
    let inner = text[start..start + end].trim();
    (!inner.is_empty()).then(|| inner.to_string())
}

/// The last number in the text (optional sign, digits with `,` grouping, optional decimals).
pub fn extract_last_number(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut end = b.len();
    // find the last digit
    while end > 0 && !b[end - 1].is_ascii_digit() {
        end -= 1;
    }
    if end == 0 {
        return None;
    }
    let mut start = end;
    while start > 0 && (b[start - 1].is_ascii_digit() || b[start - 1] == b',' || b[start - 1] == b'.') {
        start -= 1;
    }
    // a leading ',' or '.' is punctuation, not part of the number
    while start < end && (b[start] == b',' || b[start] == b'.') {
        start += 1;
    }
    if start > 0 && b[start - 1] == b'-' {
        start -= 1;
    }
    Some(text[start..end].to_string())
}

/// Parses a number written the way answers are: `1,234`, `$5`, `-3.50`, `12%`, `3/4`, `\frac{3}{4}`.
pub fn parse_number(s: &str) -> Option<f64> {
    let mut t: String = s.trim().trim_end_matches('.').replace([',', '$', ' '], "");
    for w in ["\\%", "%", "\\!", "dollars", "\\$"] {
        t = t.replace(w, "");
    }
    if let Some(inner) = t.strip_prefix("\\frac{").or_else(|| t.strip_prefix("\\dfrac{")) {
        let (a, b) = inner.strip_suffix('}')?.split_once("}{")?;
        return Some(a.parse::<f64>().ok()? / b.parse::<f64>().ok()?);
    }
    if let Some((a, b)) = t.split_once('/') {
        let (a, b) = (a.parse::<f64>().ok()?, b.parse::<f64>().ok()?);
        return (b != 0.0).then_some(a / b);
    }
    t.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Normalised string form for non-numeric answers: no whitespace, no `\left`/`\right`, `\text{}`
/// unwrapped, `dfrac`/`tfrac` → `frac`, lower case, no trailing period.
pub fn normalize(s: &str) -> String {
    let mut t = s.trim().trim_end_matches('.').to_string();
    for (a, b) in [
        ("\\left", ""),
        ("\\right", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\!", ""),
        ("$", ""),
    ] {
        t = t.replace(a, b);
    }
    while let Some(i) = t.find("\\text{") {
        let Some(j) = t[i..].find('}') else { break };
        let inner = t[i + 6..i + j].to_string();
        t.replace_range(i..i + j + 1, &inner);
    }
    t.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// True when `pred` and `gold` denote the same answer: numerically (relative tolerance 1e-6) when
/// both parse as numbers, else as normalised strings.
pub fn answers_equal(pred: &str, gold: &str) -> bool {
    match (parse_number(pred), parse_number(gold)) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        _ => {
            let (a, b) = (normalize(pred), normalize(gold));
            !a.is_empty() && a == b
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_takes_the_last_marker_and_one_line() {
        assert_eq!(extract_hash("a #### 3\nb #### 1,234 \nrest").as_deref(), Some("1,234"));
        assert_eq!(extract_hash("#### "), None);
        assert_eq!(extract_hash("no marker"), None);
    }

    #[test]
    fn boxed_handles_nesting_and_takes_the_last() {
        assert_eq!(
            extract_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}").as_deref(),
            Some("\\frac{1}{2}")
        );
        assert_eq!(extract_boxed("\\boxed{unclosed"), None);
        assert_eq!(extract_boxed("\\fbox{7}").as_deref(), Some("7"));
    }

    #[test]
    fn answer_tag_takes_the_last_closed_tag() {
        assert_eq!(
            extract_answer_tag("<answer>1</answer> <answer> Paris </answer>").as_deref(),
            Some("Paris")
        );
        assert_eq!(extract_answer_tag("<answer>open"), None);
        assert_eq!(extract_answer_tag("<answer> </answer>"), None);
    }

    #[test]
    fn last_number_with_sign_grouping_and_punctuation() {
        assert_eq!(extract_last_number("so -1,234.5.").as_deref(), Some("-1,234.5"));
        assert_eq!(extract_last_number("x=3, y=42!").as_deref(), Some("42"));
        assert_eq!(extract_last_number("none"), None);
    }

    #[test]
    fn equivalence() {
        assert!(answers_equal("1,234", "1234"));
        assert!(answers_equal("$18.00", "18"));
        assert!(answers_equal("\\frac{3}{4}", "0.75"));
        assert!(answers_equal("3/4", "\\dfrac{3}{4}"));
        assert!(answers_equal("\\text{(A)}", "(a)"));
        assert!(answers_equal("\\left( 1, 2 \\right)", "(1,2)"));
        assert!(!answers_equal("41", "42"));
        assert!(!answers_equal("", ""));
    }

    #[test]
    fn auto_prefers_hash_then_boxed_then_number() {
        assert_eq!(Extractor::Auto.extract("7 \\boxed{8} #### 9").as_deref(), Some("9"));
        assert_eq!(Extractor::Auto.extract("7 \\boxed{8}").as_deref(), Some("8"));
        assert_eq!(Extractor::Auto.extract("7 then 8").as_deref(), Some("8"));
    }
}
