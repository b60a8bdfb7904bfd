//! Property tests of the trajectory signals, selection rules and statistics: EDIS ≥ 0 and 0 for a
//! constant trajectory, shift invariance of EDIS, permutation invariance of everything that does
//! not depend on order, and AUROC symmetry.

use entrl_rewards::selection::{answer_key, best_of_n, borda_vote, majority_vote};
use entrl_rewards::signals::{edis, mean, population_variance};
use entrl_rewards::stats::{auroc, maj_at_k, pass_at_k};
use entrl_rewards::{EdisParams, Signal};
use proptest::prelude::*;

fn params() -> impl Strategy<Value = EdisParams> {
    (0usize..20, 0.0f64..3.0, 0.0f64..3.0).prop_map(|(window, tau_burst, tau_rebound)| EdisParams {
        window,
        tau_burst,
        tau_rebound,
    })
}

/// A vector and a permutation of it.
fn with_permutation<T: Clone + std::fmt::Debug>(
    s: impl Strategy<Value = Vec<T>>,
) -> impl Strategy<Value = (Vec<T>, Vec<T>)> {
    s.prop_flat_map(|v| {
        let n = v.len();
        (Just(v), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
    })
    .prop_map(|(v, p)| {
        let w = p.iter().map(|&i| v[i].clone()).collect();
        (v, w)
    })
}

proptest! {
    #[test]
    fn edis_is_nonnegative_and_zero_when_constant(h in prop::collection::vec(0.0f32..11.0, 0..120), c in 0.0f32..11.0, n in 0usize..60, p in params()) {
        prop_assert!(edis(&h, &p) >= 0.0);
        prop_assert_eq!(edis(&vec![c; n], &p), 0.0);
    }

    #[test]
    fn edis_ignores_a_constant_shift(h in prop::collection::vec(0.0f32..4.0, 0..80), p in params()) {
        // integer-valued entropies keep the shifted f32 values exact
        let h: Vec<f32> = h.iter().map(|x| x.round()).collect();
        let shifted: Vec<f32> = h.iter().map(|x| x + 3.0).collect();
        let (a, b) = (edis(&h, &p), edis(&shifted, &p));
        prop_assert!((a - b).abs() <= 1e-9 * a.max(1.0), "{} vs {}", a, b);
    }

    #[test]
    fn order_free_statistics_are_permutation_invariant((a, b) in with_permutation(prop::collection::vec(0.0f32..11.0, 1..60))) {
        prop_assert!((mean(&a) - mean(&b)).abs() < 1e-9);
        prop_assert!((population_variance(&a) - population_variance(&b)).abs() < 1e-9);
    }

    #[test]
    fn votes_and_statistics_are_permutation_invariant(
        (a, b) in with_permutation(prop::collection::vec((prop::option::of(0u8..4), 0.0f64..3.0, any::<bool>()), 1..14)),
        k in 1usize..14,
    ) {
        let keys = |v: &[(Option<u8>, f64, bool)]| v.iter().map(|x| x.0.map(|d| answer_key(&d.to_string()))).collect::<Vec<_>>();
        let vals = |v: &[(Option<u8>, f64, bool)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
        let labels = |v: &[(Option<u8>, f64, bool)]| v.iter().map(|x| x.2).collect::<Vec<_>>();
        // the vote is unique unless two answers tie; compare vote totals' winners only when unique
        let unique_winner = |v: &[(Option<u8>, f64, bool)]| {
            let mut counts = [0usize; 4];
            v.iter().filter_map(|x| x.0).for_each(|d| counts[d as usize] += 1);
            let top = *counts.iter().max().unwrap();
            top > 0 && counts.iter().filter(|&&c| c == top).count() == 1
        };
        if unique_winner(&a) {
            prop_assert_eq!(majority_vote(&keys(&a)), majority_vote(&keys(&b)));
        }
        let ia = best_of_n(&vals(&a), Signal::Edis).unwrap();
        let ib = best_of_n(&vals(&b), Signal::Edis).unwrap();
        prop_assert_eq!(a[ia].1, b[ib].1, "best-of-N picks the same value");
        prop_assert_eq!(auroc(&vals(&a), &labels(&a)), auroc(&vals(&b), &labels(&b)));
        let _ = borda_vote(&keys(&a), &vals(&a), Signal::Edis);
        // correctness of an answer is a property of the answer: derive it from the key
        let ok = |v: &[(Option<u8>, f64, bool)]| v.iter().map(|x| x.0 == Some(1)).collect::<Vec<_>>();
        let k = k.min(a.len());
        prop_assert!((maj_at_k(&keys(&a), &ok(&a), k) - maj_at_k(&keys(&b), &ok(&b), k)).abs() < 1e-12);
    }

    #[test]
    fn auroc_flips_with_the_score_sign(v in prop::collection::vec((0.0f64..3.0, any::<bool>()), 2..40)) {
        let s: Vec<f64> = v.iter().map(|x| (x.0 * 4.0).round()).collect(); // ties on purpose
        let l: Vec<bool> = v.iter().map(|x| x.1).collect();
        let neg: Vec<f64> = s.iter().map(|x| -x).collect();
        if let (Some(a), Some(b)) = (auroc(&s, &l), auroc(&neg, &l)) {
            prop_assert!((a + b - 1.0).abs() < 1e-12);
            prop_assert!((0.0..=1.0).contains(&a));
        }
    }

    #[test]
    fn pass_at_k_is_monotone(n in 1usize..50, c_frac in 0.0f64..1.0, k_frac in 0.0f64..1.0) {
        let c = ((n as f64) * c_frac) as usize;
        let k = 1 + ((n - 1) as f64 * k_frac) as usize;
        let p = pass_at_k(n, c, k);
        prop_assert!((0.0..=1.0 + 1e-12).contains(&p));
        if k < n { prop_assert!(pass_at_k(n, c, k + 1) >= p - 1e-12); }
        if c < n { prop_assert!(pass_at_k(n, c + 1, k) >= p - 1e-12); }
    }
}
