//! Evaluation statistics: AUROC (with ties), Pearson and Spearman correlation, unbiased pass@k,
//! maj@k.

/// Area under the ROC curve of `scores` as a predictor of `labels` (true = positive; a larger score
/// predicts positive): `P(s⁺ > s⁻) + ½·P(s⁺ = s⁻)`, via midranks (Mann–Whitney U). `None` when
/// one class is empty. NaN scores are not allowed.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len());
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    // Midranks are half-integers: their sum is exact in f64, whatever the order.
    let rank_sum_pos: f64 = midranks(scores)
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l)
        .map(|(r, _)| r)
        .sum();
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// Midranks (1-based, ties share their mean rank), as scipy's `rankdata(method="average")`.
pub fn midranks(values: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && values[idx[j + 1]] == values[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            ranks[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson's correlation; `None` for fewer than two points or a constant vector.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    assert_eq!(a.len(), b.len());
    if a.len() < 2 {
        return None;
    }
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// Spearman's rank correlation (Pearson of midranks); `None` as for [`pearson`].
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    pearson(&midranks(a), &midranks(b))
}

/// Unbiased pass@k from `n` samples of which `c` are correct (Chen et al. 2021):
/// `1 − C(n−c, k)/C(n, k)`, computed as a product to stay exact-ish for large n.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    assert!(k >= 1 && k <= n && c <= n, "need 1 <= k <= n and c <= n");
    if n - c < k {
        return 1.0;
    }
    1.0 - ((n - c + 1)..=n).map(|i| 1.0 - k as f64 / i as f64).product::<f64>()
}

/// Subsets enumerated exactly up to this many; beyond it maj@k samples this many seeded subsets.
pub const MAJ_EXACT_LIMIT: u64 = 200_000;

/// maj@k: the expected correctness of a majority vote over a uniformly random k-subset of the n
/// samples. `keys[i]` is sample i's answer key (`None` = no answer, no vote), `correct[i]` its
/// verdict. A vote tied between t answers counts 1/t if the correct answer is among them (a
/// uniformly random tie-break); a subset without answers counts 0. Exact enumeration when
/// `C(n, k) ≤ MAJ_EXACT_LIMIT`, else the mean over that many subsets drawn with a fixed seed.
pub fn maj_at_k(keys: &[Option<String>], correct: &[bool], k: usize) -> f64 {
    let n = keys.len();
    assert!(k >= 1 && k <= n && correct.len() == n);
    // answer ids, and whether each id is correct
    let mut ids: Vec<&str> = vec![];
    let mut id_ok: Vec<bool> = vec![];
    let sample_id: Vec<Option<usize>> = keys
        .iter()
        .zip(correct)
        .map(|(key, &ok)| {
            let key = key.as_deref()?;
            Some(match ids.iter().position(|&x| x == key) {
                Some(p) => {
                    id_ok[p] |= ok;
                    p
                }
                None => {
                    ids.push(key);
                    id_ok.push(ok);
                    ids.len() - 1
                }
            })
        })
        .collect();
    let mut counts = vec![0usize; ids.len()];
    let mut score = |subset: &[usize]| -> f64 {
        counts.iter_mut().for_each(|c| *c = 0);
        for &i in subset {
            if let Some(a) = sample_id[i] {
                counts[a] += 1;
            }
        }
        let top = counts.iter().copied().max().unwrap_or(0);
        if top == 0 {
            return 0.0;
        }
        let winners: Vec<usize> = (0..counts.len()).filter(|&a| counts[a] == top).collect();
        winners.iter().filter(|&&a| id_ok[a]).count() as f64 / winners.len() as f64
    };
    if binomial(n as u64, k as u64) <= MAJ_EXACT_LIMIT {
        let mut subset: Vec<usize> = (0..k).collect();
        let (mut sum, mut count) = (0.0, 0u64);
        loop {
            sum += score(&subset);
            count += 1;
            // next combination in lexicographic order
            let Some(p) = (0..k).rev().find(|&p| subset[p] < n - k + p) else {
                break;
            };
            subset[p] += 1;
            for q in p + 1..k {
                subset[q] = subset[q - 1] + 1;
            }
        }
        sum / count as f64
    } else {
        let mut state = 0x5EED_u64;
        let mut pool: Vec<usize> = (0..n).collect();
        let mut sum = 0.0;
        for _ in 0..MAJ_EXACT_LIMIT {
            for j in 0..k {
                let r = splitmix(&mut state) % (n - j) as u64;
                pool.swap(j, j + r as usize); // partial Fisher–Yates
            }
            sum += score(&pool[..k]);
        }
        sum / MAJ_EXACT_LIMIT as f64
    }
}

/// `C(n, k)`, saturating at `u64::MAX`.
pub fn binomial(n: u64, k: u64) -> u64 {
    let k = k.min(n - k);
    let mut r: u128 = 1;
    for i in 0..k {
        r = r * (n - i) as u128 / (i + 1) as u128;
        if r > u64::MAX as u128 {
            return u64::MAX;
        }
    }
    r as u64
}

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_small_cases() {
        assert_eq!(auroc(&[0.9, 0.1], &[true, false]), Some(1.0));
        assert_eq!(auroc(&[0.1, 0.9], &[true, false]), Some(0.0));
        assert_eq!(auroc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(auroc(&[0.5, 0.5], &[true, true]), None);
        // pos {2, 1}, neg {1, 0}: pairs 2>1, 2>0, 1=1 (½), 1>0 → 3.5/4
        assert_eq!(auroc(&[2.0, 1.0, 1.0, 0.0], &[true, true, false, false]), Some(0.875));
    }

    #[test]
    fn pass_at_k_edges() {
        assert_eq!(pass_at_k(4, 0, 2), 0.0);
        assert_eq!(pass_at_k(4, 3, 2), 1.0);
        assert!((pass_at_k(4, 1, 1) - 0.25).abs() < 1e-15);
        assert!((pass_at_k(4, 1, 2) - 0.5).abs() < 1e-15);
        assert_eq!(binomial(16, 8), 12870);
    }

    #[test]
    fn maj_at_k_small() {
        let k = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        // k = 1: mean accuracy
        assert!((maj_at_k(&k(&["1", "2", "1"]), &[true, false, true], 1) - 2.0 / 3.0).abs() < 1e-12);
        // k = 2 subsets {1,2}: tie ½, {1,1}: 1, {2,1}: ½ → 2/3
        assert!((maj_at_k(&k(&["1", "2", "1"]), &[true, false, true], 2) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(maj_at_k(&[None, None], &[false, false], 2), 0.0);
    }
}
