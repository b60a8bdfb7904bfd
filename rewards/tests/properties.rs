//! Property tests: the extractors never panic on arbitrary text (the in-CI stand-in for the fuzz
//! target in `rewards/fuzz/`), and equivalence behaves like an equivalence on numbers.

use entrl_rewards::{Extractor, answers_equal, parse_number};
use proptest::prelude::*;

proptest! {
    #[test]
    fn extractors_never_panic_and_return_substrings(s in "\\PC{0,200}") {
        for e in [Extractor::Hash, Extractor::Boxed, Extractor::LastNumber, Extractor::Auto] {
            if let Some(a) = e.extract(&s) {
                prop_assert!(!a.is_empty());
                prop_assert!(s.contains(a.as_str()), "{:?} not in {:?}", a, s);
            }
        }
    }

    #[test]
    fn hash_answer_round_trips(prefix in "[a-z +=0-9\n]{0,40}", n in -1_000_000i64..1_000_000) {
        let text = format!("{prefix}\n#### {n}");
        let got = Extractor::Hash.extract(&text).unwrap();
        prop_assert!(answers_equal(&got, &n.to_string()));
        prop_assert_eq!(parse_number(&got), Some(n as f64));
    }

    #[test]
    fn numeric_equivalence_is_symmetric_and_reflexive(a in -1e6f64..1e6, b in -1e6f64..1e6) {
        let (sa, sb) = (format!("{a}"), format!("{b}"));
        prop_assert!(answers_equal(&sa, &sa));
        prop_assert_eq!(answers_equal(&sa, &sb), answers_equal(&sb, &sa) || (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0));
    }

    #[test]
    fn grouping_commas_do_not_matter(n in 0u64..10_000_000_000) {
        let plain = n.to_string();
        let grouped: String = plain.chars().rev().collect::<Vec<_>>().chunks(3).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(",").chars().rev().collect();
        prop_assert!(answers_equal(&grouped, &plain));
        prop_assert_eq!(Extractor::LastNumber.extract(&format!("total: {grouped}.")), Some(grouped.clone()));
    }
}
