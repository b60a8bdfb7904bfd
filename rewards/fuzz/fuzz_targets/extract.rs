#![no_main]
//! Fuzz the extractors and equivalence: no panic on any UTF-8 input, answers are substrings.
use entrl_rewards::{Extractor, answers_equal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        for e in [Extractor::Hash, Extractor::Boxed, Extractor::LastNumber, Extractor::Auto] {
            if let Some(a) = e.extract(s) {
                assert!(s.contains(a.as_str()));
                let _ = answers_equal(&a, s);
            }
        }
    }
});
