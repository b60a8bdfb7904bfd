//! Choosing among N sampled completions (METHODS §1): majority vote, best-of-N by a signal,
//! score-weighted Borda voting, best-k-of-N; and EDIS's two GRPO hooks, sequence filtering and
//! sequence weighting.
//!
//! Tie rules (the paper gives none, ours): the lowest index wins among equal scores, and the
//! answer seen first wins among equal vote totals. Completions without an extracted answer do not vote.

use crate::extract::{normalize, parse_number};
use crate::signals::Signal;

/// Canonical voting key of an extracted answer: the number's shortest form when it parses as one
/// (`"1,200"` and `"1200.0"` vote together), else the normalised string.
pub fn answer_key(answer: &str) -> String {
    match parse_number(answer) {
        Some(x) => format!("{}", x + 0.0), // + 0.0 turns -0 into 0: one answer
        None => normalize(answer),
    }
}

/// Weighted vote: the key with the largest summed weight (first seen on ties); `None` if no
/// completion has an answer.
pub fn weighted_vote(keys: &[Option<String>], weights: &[f64]) -> Option<String> {
    assert_eq!(keys.len(), weights.len(), "one weight per completion");
    let mut totals: Vec<(&str, f64)> = vec![];
    for (k, &w) in keys.iter().zip(weights) {
        let Some(k) = k else { continue };
        match totals.iter_mut().find(|(x, _)| *x == k.as_str()) {
            Some(e) => e.1 += w,
            None => totals.push((k, w)),
        }
    }
    let mut best: Option<(&str, f64)> = None;
    for (k, t) in totals {
        if best.is_none_or(|(_, b)| t > b) {
            best = Some((k, t));
        }
    }
    best.map(|(k, _)| k.to_string())
}

/// Majority vote over answer keys (first seen on ties).
pub fn majority_vote(keys: &[Option<String>]) -> Option<String> {
    weighted_vote(keys, &vec![1.0; keys.len()])
}

/// Score-weighted Borda weight of one completion (METHODS §1): lower-is-better signals (EDIS,
/// entropies, NLL) weigh `1/(s + 0.1)`, self-certainty weighs `s`.
pub fn borda_weight(signal: Signal, value: f64) -> f64 {
    if signal.higher_is_better() {
        value
    } else {
        1.0 / (value + 0.1)
    }
}

/// Score-weighted Borda vote: each completion votes for its answer with [`borda_weight`].
pub fn borda_vote(keys: &[Option<String>], values: &[f64], signal: Signal) -> Option<String> {
    let w: Vec<f64> = values.iter().map(|&v| borda_weight(signal, v)).collect();
    weighted_vote(keys, &w)
}

/// Indices of all completions ordered best first by `signal` (stable: lower index first on ties).
pub fn ranked(values: &[f64], signal: Signal) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| {
        signal
            .confidence(values[b])
            .total_cmp(&signal.confidence(values[a]))
            .then(a.cmp(&b))
    });
    idx
}

/// Best-of-N: the index of the single best completion by `signal` (`None` if empty).
pub fn best_of_n(values: &[f64], signal: Signal) -> Option<usize> {
    ranked(values, signal).first().copied()
}

/// Best-k-of-N: the `k` best completions by `signal`, best first.
pub fn best_k_of_n(values: &[f64], k: usize, signal: Signal) -> Vec<usize> {
    let mut r = ranked(values, signal);
    r.truncate(k);
    r
}

/// What the EDIS paper reports of one pool under best-k-of-N (METHODS §1, §5.1): the pool ranked by
/// a signal, its `k` most confident completions kept.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct KeptK {
    /// Mean accuracy of the kept k.
    pub mean: f64,
    /// Accuracy of the single most confident completion ("EDIS-best" for EDIS).
    pub best: f64,
    /// Accuracy of the majority vote over the kept k (first seen wins ties; a voted answer is
    /// correct when a kept completion giving it was judged correct).
    pub majority: f64,
}

/// Best-k-of-N over `pools` disjoint pools of `pool` consecutive completions each (N = m·k with
/// `pool` = m·k), averaged over the pools: each pool is ranked by `signal` and its `k` best kept.
/// Completions past the last whole pool are not used. Panics unless `1 <= k <= pool <= N`.
pub fn best_k_of_n_pools(
    keys: &[Option<String>],
    correct: &[bool],
    values: &[f64],
    signal: Signal,
    k: usize,
    pool: usize,
) -> KeptK {
    assert!(k >= 1 && k <= pool && pool <= values.len(), "need 1 <= k <= pool <= N");
    assert!(keys.len() == values.len() && correct.len() == values.len());
    let pools = values.len() / pool;
    let mut sum = KeptK::default();
    for p in 0..pools {
        let range = p * pool..(p + 1) * pool;
        let kept: Vec<usize> = best_k_of_n(&values[range.clone()], k, signal)
            .into_iter()
            .map(|i| i + range.start)
            .collect();
        let kept_keys: Vec<Option<String>> = kept.iter().map(|&i| keys[i].clone()).collect();
        let vote = majority_vote(&kept_keys);
        let vote_ok = vote.is_some() && kept.iter().any(|&i| keys[i] == vote && correct[i]);
        sum.mean += kept.iter().filter(|&&i| correct[i]).count() as f64 / k as f64;
        sum.best += f64::from(u8::from(correct[kept[0]]));
        sum.majority += f64::from(u8::from(vote_ok));
    }
    let n = pools as f64;
    KeptK {
        mean: sum.mean / n,
        best: sum.best / n,
        majority: sum.majority / n,
    }
}

/// EDIS sequence filtering (METHODS §1, GRPO integration): from one prompt's m·n rollouts keep `keep`
/// by alternately taking the lowest-EDIS correct and the highest-EDIS incorrect remaining rollout,
/// starting with a correct one; when one pool is empty the other continues. Returns the kept
/// indices in ascending order.
pub fn edis_filter(edis: &[f64], correct: &[bool], keep: usize) -> Vec<usize> {
    assert_eq!(edis.len(), correct.len());
    // pools ordered so that the next pick is the last element
    let mut good: Vec<usize> = (0..edis.len()).filter(|&i| correct[i]).collect();
    good.sort_by(|&a, &b| edis[b].total_cmp(&edis[a]).then(b.cmp(&a))); // lowest EDIS (then lowest index) last
    let mut bad: Vec<usize> = (0..edis.len()).filter(|&i| !correct[i]).collect();
    bad.sort_by(|&a, &b| edis[a].total_cmp(&edis[b]).then(b.cmp(&a))); // highest EDIS (then lowest index) last
    let mut kept = vec![];
    let mut take_correct = true;
    while kept.len() < keep.min(edis.len()) {
        let pick = if take_correct {
            good.pop().or_else(|| bad.pop())
        } else {
            bad.pop().or_else(|| good.pop())
        };
        kept.push(pick.expect("pools hold enough rollouts"));
        take_correct = !take_correct;
    }
    kept.sort_unstable();
    kept
}

/// EDIS sequence weights (METHODS §1, GRPO integration), one per rollout of a batch of groups of
/// `group` consecutive rollouts:
/// `z = (ln(EDIS+1) − μ)/(σ + eps)` over the whole batch (σ: population std); `s = −z` for correct,
/// `+z` for incorrect; inside each correctness subgroup `G` of a mixed-outcome prompt,
/// `ŵ_i = |G|·exp(s_i/α)/Σ_{j∈G} exp(s_j/α)` (mean weight 1 per subgroup). Prompts whose rollouts
/// are all correct or all incorrect get weight 1.
pub fn edis_weights(edis: &[f64], correct: &[bool], group: usize, alpha: f64, eps: f64) -> Vec<f64> {
    assert_eq!(edis.len(), correct.len());
    assert!(group > 0 && edis.len().is_multiple_of(group), "whole groups");
    let n = edis.len();
    if n == 0 {
        return vec![];
    }
    let l: Vec<f64> = edis.iter().map(|&e| (e + 1.0).ln()).collect();
    let mu = l.iter().sum::<f64>() / n as f64;
    let sigma = (l.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / n as f64).sqrt();
    let s: Vec<f64> = (0..n)
        .map(|i| {
            let z = (l[i] - mu) / (sigma + eps);
            if correct[i] { -z } else { z }
        })
        .collect();
    let mut w = vec![1.0; n];
    for start in (0..n).step_by(group) {
        let idx = start..start + group;
        let n_ok = correct[idx.clone()].iter().filter(|&&c| c).count();
        if n_ok == 0 || n_ok == group {
            continue;
        }
        for sub in [true, false] {
            let members: Vec<usize> = idx.clone().filter(|&i| correct[i] == sub).collect();
            let m = members.iter().map(|&i| s[i] / alpha).fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = members.iter().map(|&i| (s[i] / alpha - m).exp()).sum();
            for &i in &members {
                w[i] = members.len() as f64 * (s[i] / alpha - m).exp() / z;
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| (!s.is_empty()).then(|| answer_key(s))).collect()
    }

    #[test]
    fn votes() {
        assert_eq!(majority_vote(&keys(&["12", "1,2", "12.0", "3", ""])), Some("12".into()));
        assert_eq!(majority_vote(&keys(&["3", "4"])), Some("3".into())); // first seen on a tie
        assert_eq!(majority_vote(&keys(&["", ""])), None);
        // Borda by EDIS: one very stable "4" (1/0.1 = 10) beats three unstable "3" (3 · 1/2.1)
        let k = keys(&["3", "3", "3", "4"]);
        assert_eq!(borda_vote(&k, &[2.0, 2.0, 2.0, 0.0], Signal::Edis), Some("4".into()));
        assert_eq!(
            borda_vote(&k, &[1.0, 1.0, 1.0, 2.5], Signal::SelfCertainty),
            Some("3".into())
        );
    }

    #[test]
    fn best_of_n_respects_direction_and_ties() {
        let v = [0.5, 0.1, 0.1, 0.9];
        assert_eq!(best_of_n(&v, Signal::Edis), Some(1));
        assert_eq!(best_of_n(&v, Signal::SelfCertainty), Some(3));
        assert_eq!(best_k_of_n(&v, 3, Signal::Edis), vec![1, 2, 0]);
    }

    #[test]
    fn filter_alternates_and_continues_from_the_other_pool() {
        // correct: 0 (e=3), 2 (e=1), 4 (e=2); incorrect: 1 (e=5), 3 (e=0)
        let e = [3.0, 5.0, 1.0, 0.0, 2.0];
        let c = [true, false, true, false, true];
        assert_eq!(edis_filter(&e, &c, 2), vec![1, 2]); // best correct 2, worst incorrect 1
        assert_eq!(edis_filter(&e, &c, 4), vec![1, 2, 3, 4]); // then correct 4, incorrect 3
        assert_eq!(edis_filter(&e, &c, 5), vec![0, 1, 2, 3, 4]);
        // no incorrect: lowest EDIS correct ones
        assert_eq!(edis_filter(&[3.0, 1.0, 2.0], &[true; 3], 2), vec![1, 2]);
    }

    #[test]
    fn weights_are_one_for_uniform_groups_and_average_one_per_subgroup() {
        let e = [0.0, 4.0, 1.0, 9.0, 2.0, 2.0, 2.0, 5.0];
        let c = [true, true, false, false, true, true, true, true];
        let w = edis_weights(&e, &c, 4, 1.8, 1e-8);
        assert_eq!(&w[4..], &[1.0; 4]); // all correct: untouched
        assert!((w[0] + w[1] - 2.0).abs() < 1e-12 && (w[2] + w[3] - 2.0).abs() < 1e-12);
        assert!(w[0] > w[1], "the more stable correct rollout weighs more");
        assert!(w[3] > w[2], "the more unstable incorrect rollout weighs more");
    }
}
