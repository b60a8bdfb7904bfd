//! The verifiers users reach for first, besides the numeric `accuracy`: exact string match after
//! SQuAD-style normalisation, a regular-expression match, and multiple-choice letters (ARC-style).

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

/// SQuAD's answer normalisation: lower case, ASCII punctuation removed, the articles a/an/the
/// removed, whitespace collapsed to single spaces. `case_sensitive` keeps the case.
pub fn normalize_text(s: &str, case_sensitive: bool) -> String {
    let cased = if case_sensitive {
        s.to_string()
    } else {
        s.to_lowercase()
    };
    let no_punct: String = cased.chars().filter(|c| !c.is_ascii_punctuation()).collect();
    no_punct
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// 1 when the normalised texts are equal and not empty.
pub fn exact_match(pred: &str, gold: &str, case_sensitive: bool) -> bool {
    let p = normalize_text(pred, case_sensitive);
    !p.is_empty() && p == normalize_text(gold, case_sensitive)
}

/// The placeholder a regex pattern may hold for the gold answer (inserted escaped, so matched literally).
pub const ANSWER_PLACEHOLDER: &str = "{answer}";

/// `pattern` with `{answer}` replaced by the escaped gold answer.
fn instantiate(pattern: &str, gold: &str) -> String {
    pattern.replace(ANSWER_PLACEHOLDER, &regex::escape(gold))
}

/// Checks that a pattern compiles (with a sample gold answer in place of `{answer}`).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    Regex::new(&instantiate(pattern, "42"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

thread_local! {
    // Compiled patterns by their instantiated text: a run scores thousands of completions with a
    // handful of distinct (pattern, gold) pairs per step.
    static COMPILED: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

const MAX_CACHED: usize = 4096;

/// Whether `text` matches `pattern` (its `{answer}` replaced by the escaped `gold`). A pattern
/// that does not compile never matches (patterns are checked with the config, before any work).
pub fn regex_match(pattern: &str, gold: &str, text: &str) -> bool {
    let source = instantiate(pattern, gold);
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(&source) {
            let Ok(re) = Regex::new(&source) else { return false };
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(source.clone(), re);
        }
        cache[&source].is_match(text)
    })
}

/// The default answer letters of multiple-choice tasks (ARC has up to five options).
pub const DEFAULT_LETTERS: &str = "ABCDE";

/// The letter a gold answer names: `C`, `(c)`, `C.` or `c)`; `None` if not one of `letters`.
pub fn gold_choice(gold: &str, letters: &str) -> Option<char> {
    let t = gold
        .trim()
        .trim_start_matches(['(', '['])
        .trim_end_matches([')', ']', '.', ':']);
    let mut cs = t.chars();
    let c = cs.next()?.to_ascii_uppercase();
    (cs.next().is_none() && letters.contains(c)).then_some(c)
}

/// A letter of `letters` at the start of `span` (after `(`/`[`, "option"/"choice"), standing alone:
/// `C`, `(C)`, `C.`, `C) because…`, `Option C`. `None` when the span starts with a longer word.
fn leading_choice(span: &str, letters: &str) -> Option<char> {
    let mut t = span.trim_start().trim_start_matches(['(', '[', '*', ' ']);
    for w in ["option ", "Option ", "choice ", "Choice "] {
        t = t.strip_prefix(w).unwrap_or(t);
    }
    let mut cs = t.chars();
    let c = cs.next()?.to_ascii_uppercase();
    let alone = cs.next().is_none_or(|n| !n.is_alphanumeric());
    (alone && letters.contains(c)).then_some(c)
}

/// The chosen letter in a completion, read from the first of these that names one: the `####`
/// line, the last `\boxed{}`, the last `<answer>` tag, the last "answer is X" / "Answer: X", the
/// whole completion when it is just a letter, the last parenthesised `(X)`.
pub fn extract_choice(text: &str, letters: &str) -> Option<char> {
    let spans = [
        crate::extract::extract_hash(text),
        crate::extract::extract_boxed(text),
        crate::extract::extract_answer_tag(text),
    ];
    if let Some(c) = spans.iter().flatten().find_map(|s| leading_choice(s, letters)) {
        return Some(c);
    }
    if let Some(c) = after_answer_phrase(text, letters) {
        return Some(c);
    }
    let whole = text.trim().trim_end_matches(['.', ')', ']']);
    if whole.chars().count() <= 3
        && let Some(c) = leading_choice(whole, letters)
    {
        return Some(c);
    }
    text.rmatch_indices('(').find_map(|(i, _)| {
        let mut cs = text[i + 1..].chars();
        let c = cs.next()?.to_ascii_uppercase();
        (cs.next() == Some(')') && letters.contains(c)).then_some(c)
    })
}

/// The letter after the last "answer is" / "answer:" (any case).
fn after_answer_phrase(text: &str, letters: &str) -> Option<char> {
    let lower = text.to_ascii_lowercase();
    lower.rmatch_indices("answer").find_map(|(i, _)| {
        let rest = text[i + 6..].trim_start();
        let rest = match rest.get(..2) {
            Some(w) if w.eq_ignore_ascii_case("is") => &rest[2..],
            _ => rest,
        };
        let rest = rest.trim_start().strip_prefix(':').unwrap_or(rest);
        leading_choice(rest, letters)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squad_normalisation() {
        assert_eq!(normalize_text("  The  Eiffel-Tower! ", false), "eiffeltower");
        assert!(exact_match("the Paris.", "paris", false));
        assert!(!exact_match("the Paris.", "paris", true));
        assert!(!exact_match("", "", false));
        assert!(!exact_match("Paris, France", "Paris", false));
    }

    #[test]
    fn regex_with_escaped_answer() {
        assert!(regex_match(r"(?m)^Answer: {answer}$", "3.5", "work\nAnswer: 3.5"));
        assert!(
            !regex_match(r"(?m)^Answer: {answer}$", "3.5", "work\nAnswer: 3x5"),
            "the dot is literal"
        );
        assert!(regex_match(r"\d+ apples", "", "7 apples"));
        assert!(check_pattern("(unclosed").is_err());
        assert!(!regex_match("(unclosed", "1", "(unclosed"));
    }

    #[test]
    fn choices() {
        let l = DEFAULT_LETTERS;
        assert_eq!(extract_choice("Reasoning... #### C", l), Some('C'));
        assert_eq!(extract_choice("so \\boxed{(b)}", l), Some('B'));
        assert_eq!(extract_choice("<answer>D</answer>", l), Some('D'));
        assert_eq!(extract_choice("A is wrong, so the answer is (E).", l), Some('E'));
        assert_eq!(extract_choice("Answer: B because it grows", l), Some('B'));
        assert_eq!(extract_choice(" A. ", l), Some('A'));
        assert_eq!(extract_choice("I pick (C) over (D) - no, (D)", l), Some('D'));
        assert_eq!(extract_choice("Apples are red", l), None);
        assert_eq!(extract_choice("the answer is Blue", l), None);
        assert_eq!(extract_choice("#### F", l), None);
        assert_eq!(gold_choice("(c)", l), Some('C'));
        assert_eq!(gold_choice("CD", l), None);
    }
}
