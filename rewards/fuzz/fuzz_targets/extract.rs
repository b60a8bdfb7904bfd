#![no_main]
//! Fuzz the extractors, equivalence and verifiers: no panic on any UTF-8 input, answers are
//! substrings, a chosen letter is one of the options.
use entrl_rewards::verifiers::{DEFAULT_LETTERS, exact_match, extract_choice, regex_match};
use entrl_rewards::{Extractor, answers_equal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        for e in [Extractor::Hash, Extractor::Boxed, Extractor::LastNumber, Extractor::AnswerTag, Extractor::Auto] {
            if let Some(a) = e.extract(s) {
                assert!(s.contains(a.as_str()));
                let _ = answers_equal(&a, s);
                let _ = exact_match(&a, s, false);
                let _ = regex_match("(?m)^Answer: {answer}$", &a, s);
            }
        }
        if let Some(c) = extract_choice(s, DEFAULT_LETTERS) {
            assert!(DEFAULT_LETTERS.contains(c));
        }
    }
});
