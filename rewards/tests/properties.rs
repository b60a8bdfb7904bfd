//! Property tests: the extractors never panic on arbitrary text (the in-CI stand-in for the fuzz
//! target in `rewards/fuzz/`), and equivalence behaves like an equivalence on numbers; the
//! exact-match, regex and multiple-choice verifiers accept what they should on arbitrary text.

use entrl_rewards::verifiers::{DEFAULT_LETTERS, exact_match, extract_choice, normalize_text, regex_match};
use entrl_rewards::{Extractor, RewardFn, answers_equal, parse_number};
use proptest::prelude::*;

/// A final "Answer: <gold>" line (outside the macros: proptest formats its condition text).
const ANSWER_LINE: &str = "(?m)^Answer: {answer}$";

proptest! {
    #[test]
    fn extractors_never_panic_and_return_substrings(s in "\\PC{0,200}") {
        for e in [Extractor::Hash, Extractor::Boxed, Extractor::LastNumber, Extractor::AnswerTag, Extractor::Auto] {
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

    #[test]
    fn verifiers_never_panic(s in "\\PC{0,200}", gold in "\\PC{0,20}") {
        if let Some(c) = extract_choice(&s, DEFAULT_LETTERS) {
            prop_assert!(DEFAULT_LETTERS.contains(c));
        }
        let _ = exact_match(&s, &gold, false);
        let _ = regex_match(ANSWER_LINE, &gold, &s);
    }

    #[test]
    fn normalisation_is_idempotent_and_ignores_case_and_spacing(s in "[A-Za-z .,!?'-]{0,60}") {
        let n = normalize_text(&s, false);
        prop_assert_eq!(normalize_text(&n, false), n.clone());
        let shouted = format!("  {}  ", s.to_uppercase().replace(' ', "   "));
        prop_assert_eq!(normalize_text(&shouted, false), n.clone());
        prop_assert_eq!(exact_match(&shouted, &s, false), !n.is_empty());
    }

    #[test]
    fn gold_is_matched_literally_by_the_placeholder(gold in "\\PC{1,30}", prefix in "[a-z ]{0,20}") {
        // any gold text, regex metacharacters included, matches itself and nothing shorter
        let text = format!("{prefix}\nAnswer: {gold}");
        let matched = regex_match(ANSWER_LINE, &gold, &text);
        prop_assert!(matched || gold.contains('\n') || gold.contains('\r'));
        let shorter: String = gold.chars().skip(1).collect();
        let shorter_matches = regex_match(ANSWER_LINE, &gold, &format!("Answer: {shorter}"));
        prop_assert!(!shorter_matches);
    }

    #[test]
    fn a_final_choice_line_wins(prefix in "\\PC{0,120}", k in 0usize..5) {
        let letter = DEFAULT_LETTERS.chars().nth(k).unwrap();
        let text = format!("{prefix}\n#### {letter}");
        prop_assert_eq!(extract_choice(&text, DEFAULT_LETTERS), Some(letter));
        let mc = RewardFn::MultipleChoice { letters: DEFAULT_LETTERS.into() };
        prop_assert_eq!(mc.score(&text, &format!("({})", letter.to_ascii_lowercase()), 0), 1.0);
        let other = DEFAULT_LETTERS.chars().nth((k + 1) % 5).unwrap();
        prop_assert_eq!(mc.score(&text, &other.to_string(), 0), 0.0);
    }
}
