#!/usr/bin/env python3
"""Golden values for entrl's trajectory signals, selection rules and evaluation statistics,
written independently of the Rust code from docs/METHODS.md's formulas with numpy and the Python
standard library (exact integer combinatorics, itertools subsets, O(n^2) pair counting).

Writes tests/fixtures/signals_golden.json.  Run: .venv/bin/python scripts/oracle/signals_golden.py
Entropies are drawn in float32 and stored as the float64 value of that float32, so the Rust side
(which records f32 entropies and computes in f64) sees exactly the same numbers.
"""
import itertools
import json
import math
import pathlib
from collections import Counter

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "signals_golden.json"
CONF = ["conf_mean", "conf_lowest_group", "conf_bottom_groups", "conf_tail"]
SIGNALS = ["edis", "mean_entropy", "self_certainty", "nll", "max_entropy"] + CONF
HIGHER_IS_BETTER = {"self_certainty"} | set(CONF)


def edis_parts(h, w, tb, tr):
    h = np.asarray(h, dtype=np.float64)
    T = len(h)
    bursts = int(np.sum(h[w:] - h[:-w] > tb)) if (w > 0 and T > w) else 0
    rebounds = 0
    for t in range(1, T):
        if h[t] - np.min(h[:t]) > tr:
            rebounds += 1
    var = float(np.var(h)) if T else 0.0
    edis = 0.0 if T < 2 else (bursts + rebounds) / 2.0 * (1.0 + var)
    return bursts, rebounds, var, edis


def deepconf(top, window, tail, bottom_percent):
    """DeepConf (arXiv 2508.15260) as in facebookresearch/deepconf's utils, windows scaled:
    C_t = -mean(returned top-k log-probs) (rounded to float32, as recorded); windows of n tokens,
    stride 1 (one window of all when T < n); n or tail = 0 means min(2048, max(1, ceil(T/8)))."""
    T = len(top)
    if T == 0:
        return {k: 0.0 for k in CONF}
    C = [float(np.float32(-(sum(float(x) for x in t) / len(t)))) if len(t) else 0.0 for t in top]
    auto = min(2048, max(1, math.ceil(T / 8)))
    n = window or auto
    tl = min(T, tail or auto)
    mean = lambda xs: sum(xs) / len(xs)
    groups = [mean(C)] if T < n else [mean(C[i:i + n]) for i in range(T - n + 1)]
    keep = max(1, len(groups) * bottom_percent // 100)
    return {
        "conf_mean": mean(C),
        "conf_lowest_group": min(groups),
        "conf_bottom_groups": mean(sorted(groups)[:keep]),
        "conf_tail": mean(C[T - tl:]),
    }


def signals(h, lp, sc, w, tb, tr, top=(), window=0, tail=0, bottom_percent=10):
    _, _, _, e = edis_parts(h, w, tb, tr)
    m = lambda x: float(np.mean(np.asarray(x, dtype=np.float64))) if len(x) else 0.0
    out = {
        "edis": e,
        "mean_entropy": m(h),
        "self_certainty": m(sc),
        "nll": -m(lp),
        "max_entropy": float(np.max(np.asarray(h, dtype=np.float64))) if len(h) else 0.0,
    }
    out.update(deepconf(list(top), window, tail, bottom_percent))
    return out


def spiky(rng, T):
    """An entropy trajectory with calm stretches and bursts, so thresholds are crossed."""
    base = rng.uniform(0.0, 0.6, T)
    spikes = rng.random(T) < 0.2
    base[spikes] += rng.uniform(0.8, 3.0, spikes.sum())
    return base.astype(np.float32)


def f32list(x):
    return [float(v) for v in np.asarray(x, dtype=np.float32)]


def trajectory_cases(rng):
    cases = []
    shapes = [(0, 8), (1, 8), (2, 1), (5, 8), (8, 8), (9, 8), (3, 4)]
    shapes += [(int(rng.integers(10, 80)), int(w)) for w in [1, 4, 8, 16] for _ in range(4)]
    for i, (T, w) in enumerate(shapes):
        h = spiky(rng, T)
        lp = -rng.exponential(0.7, T).astype(np.float32)
        sc = rng.uniform(0.5, 9.0, T).astype(np.float32)
        tb, tr = 1.36, 1.33
        b, r, var, e = edis_parts(h, w, tb, tr)
        k = [1, 5, 20][i % 3]
        top = [f32list(-np.sort(rng.exponential(1.5, k))) for _ in range(T)]  # most likely first
        dc = {"window": [0, 3, 16][i % 3], "tail": [0, 5][i % 2], "bottom_percent": [10, 50][i % 2]}
        cases.append({
            "entropies": f32list(h), "logprobs": f32list(lp), "self_certainty": f32list(sc),
            "top_logprobs": top, "deepconf": dc,
            "window": w, "tau_burst": tb, "tau_rebound": tr,
            "bursts": b, "rebounds": r, "variance": var,
            "signals": signals(h, lp, sc, w, tb, tr, top, **dc),
        })
    const = np.full(20, 1.7, dtype=np.float32)
    b, r, var, e = edis_parts(const, 8, 1.36, 1.33)
    cases.append({"entropies": f32list(const), "logprobs": [0.0] * 20, "self_certainty": [1.0] * 20,
                  "top_logprobs": [], "deepconf": {"window": 0, "tail": 0, "bottom_percent": 10},
                  "window": 8, "tau_burst": 1.36, "tau_rebound": 1.33, "bursts": b, "rebounds": r,
                  "variance": var, "signals": signals(const, [0.0] * 20, [1.0] * 20, 8, 1.36, 1.33)})
    return cases


def key(a):
    return a  # keys are given already canonical (small integers as strings)


def vote(keys, weights):
    """Largest summed weight; ties -> the answer that appears first."""
    totals, order = {}, []
    for k, w in zip(keys, weights):
        if k is None:
            continue
        if k not in totals:
            totals[k] = 0.0
            order.append(k)
        totals[k] += w
    if not order:
        return None
    best = max(totals[k] for k in order)
    return next(k for k in order if totals[k] == best)


def rank(values, sig):
    conf = [v if sig in HIGHER_IS_BETTER else -v for v in values]
    return sorted(range(len(values)), key=lambda i: (-conf[i], i))


def selection_cases(rng):
    cases = []
    for n in [4, 8, 16, 16, 16]:
        keys = [None if rng.random() < 0.1 else str(int(rng.integers(0, 4))) for _ in range(n)]
        vals = {s: [float(v) for v in rng.uniform(0.0, 3.0, n)] for s in SIGNALS}
        vals["edis"][int(rng.integers(0, n))] = 0.0  # a perfectly stable one
        vals["edis"][1] = vals["edis"][0]  # a tie
        borda = {}
        for s in SIGNALS:
            w = [v if s in HIGHER_IS_BETTER else 1.0 / (v + 0.1) for v in vals[s]]
            borda[s] = vote(keys, w)
        cases.append({
            "keys": keys, "values": vals,
            "majority": vote(keys, [1.0] * n),
            "borda": borda,
            "best_of_n": {s: rank(vals[s], s)[0] for s in SIGNALS},
            "best_4_of_n": {s: rank(vals[s], s)[:4] for s in SIGNALS},
        })
    return cases


def best_k_of_n_pools(selection):
    """EDIS paper's best-k-of-N (METHODS §1, §5.1) on the selection sets: disjoint pools of `pool`
    consecutive samples, each ranked by a signal (numpy lexsort: confidence descending, index
    ascending), k kept; mean accuracy of the kept k, accuracy of the best one, and of the majority
    vote over the kept k, averaged over pools. A sample is correct when its answer is "1"."""
    cases = []
    for ci, case in enumerate(selection):
        keys, n = case["keys"], len(case["keys"])
        correct = np.array([k == "1" for k in keys])
        for k, pool in [(1, 1), (2, 2), (2, 4), (3, 5), (2, 8), (4, 8), (4, 16), (8, 16)]:
            if pool > n:
                continue
            for s in SIGNALS:
                v = np.array(case["values"][s])
                conf = v if s in HIGHER_IS_BETTER else -v
                mean = best = maj = 0.0
                pools = n // pool
                for p in range(pools):
                    idx = np.arange(p * pool, (p + 1) * pool)
                    order = idx[np.lexsort((idx, -conf[idx]))][:k]
                    mean += correct[order].mean()
                    best += float(correct[order[0]])
                    voted = vote([keys[i] for i in order], [1.0] * k)
                    maj += float(voted is not None and any(keys[i] == voted and correct[i] for i in order))
                cases.append({"case": ci, "signal": s, "k": k, "pool": pool,
                              "mean": mean / pools, "best": best / pools, "majority": maj / pools})
    return cases


def edis_filter(edis, correct, keep):
    good = [i for i in range(len(edis)) if correct[i]]
    bad = [i for i in range(len(edis)) if not correct[i]]
    kept, take_good = [], True
    while len(kept) < min(keep, len(edis)):
        pool = good if (take_good and good) or not bad else bad
        if pool is good:
            i = min(good, key=lambda j: (edis[j], j))
        else:
            i = max(bad, key=lambda j: (edis[j], -j))
        pool.remove(i)
        kept.append(i)
        take_good = not take_good
    return sorted(kept)


def edis_weights(edis, correct, group, alpha, eps):
    l = np.log(np.asarray(edis) + 1.0)
    z = (l - l.mean()) / (l.std() + eps)
    s = np.where(correct, -z, z)
    w = np.ones(len(edis))
    for g in range(0, len(edis), group):
        c = np.asarray(correct[g:g + group])
        if c.all() or not c.any():
            continue
        sg = s[g:g + group]
        for sub in (True, False):
            idx = np.where(c == sub)[0]
            soft = np.exp(sg[idx] / alpha) / np.exp(sg[idx] / alpha).sum()
            w[g + idx] = len(idx) * soft
    return [float(x) for x in w]


def grpo_hook_cases(rng):
    filt, weights = [], []
    for n_corr in [0, 1, 3, 5, 9, 10]:
        correct = [True] * n_corr + [False] * (10 - n_corr)
        rng.shuffle(correct)
        edis = [float(x) for x in np.round(rng.exponential(2.0, 10), 1)]  # rounding makes ties
        filt.append({"edis": edis, "correct": [bool(c) for c in correct], "keep": 8,
                     "kept": edis_filter(edis, correct, 8)})
    for group in [4, 8]:
        correct = [bool(c) for c in rng.random(4 * group) < 0.5]
        correct[:group] = [True] * group  # one all-correct group
        edis = [float(x) for x in rng.exponential(2.0, 4 * group)]
        weights.append({"edis": edis, "correct": correct, "group": group, "alpha": 1.8, "eps": 1e-8,
                        "weights": edis_weights(edis, correct, group, 1.8, 1e-8)})
    return filt, weights


def auroc_pairs(scores, labels):
    pos = [s for s, l in zip(scores, labels) if l]
    neg = [s for s, l in zip(scores, labels) if not l]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def maj_at_k(keys, correct, k):
    ok = {}
    for a, c in zip(keys, correct):
        if a is not None:
            ok[a] = ok.get(a, False) or c
    total, count = 0.0, 0
    for sub in itertools.combinations(range(len(keys)), k):
        cnt = Counter(keys[i] for i in sub if keys[i] is not None)
        count += 1
        if not cnt:
            continue
        top = max(cnt.values())
        winners = [a for a, v in cnt.items() if v == top]
        total += sum(ok[a] for a in winners) / len(winners)
    return total / count


def stats_cases(rng):
    aurocs = []
    for n in [5, 20, 50, 200]:
        scores = [float(x) for x in np.round(rng.normal(0, 1, n), 1)]  # many ties
        labels = [bool(l) for l in rng.random(n) < 0.4]
        aurocs.append({"scores": scores, "labels": labels, "auroc": auroc_pairs(scores, labels)})
    aurocs.append({"scores": [1.0, 1.0, 1.0], "labels": [True, False, True], "auroc": 0.5})
    aurocs.append({"scores": [1.0, 2.0], "labels": [True, True], "auroc": None})
    passk = []
    for n, c, k in [(16, 0, 1), (16, 1, 1), (16, 3, 4), (16, 8, 8), (16, 16, 16), (100, 7, 10), (10, 9, 2), (64, 5, 32)]:
        passk.append({"n": n, "c": c, "k": k,
                      "pass_at_k": 1.0 - math.comb(n - c, k) / math.comb(n, k)})
    majk = []
    for n, k in [(4, 1), (6, 3), (8, 4), (12, 5), (16, 8)]:
        keys = [None if rng.random() < 0.15 else str(int(rng.integers(0, 3))) for _ in range(n)]
        gold = "1"
        correct = [a == gold for a in keys]
        majk.append({"keys": keys, "correct": correct, "k": k, "maj_at_k": maj_at_k(keys, correct, k)})
    return aurocs, passk, majk


def entropy_mask_cases(rng):
    """TRL's get_high_entropy_mask: threshold = quantile(entropies of loss tokens, 1 - rho), linear
    interpolation (np.quantile's default = torch.quantile's); keep loss tokens with H >= threshold."""
    cases = []
    for rho in [0.2, 0.5, 0.8, 1.0]:
        h = rng.exponential(0.5, (4, 7)).astype(np.float32)
        mask = rng.random((4, 7)) < 0.8
        vals = h[mask].astype(np.float64)
        thr = np.quantile(vals, 1.0 - rho)
        keep = (h >= thr) & mask
        cases.append({"entropies": f32list(h.ravel()), "mask": [bool(m) for m in mask.ravel()], "rho": rho,
                      "keep": [bool(k) for k in keep.ravel()]})
    return cases


def main():
    rng = np.random.default_rng(20260223)
    filt, weights = grpo_hook_cases(rng)
    aurocs, passk, majk = stats_cases(rng)
    out = {
        "source": "scripts/oracle/signals_golden.py (numpy " + np.__version__ + ")",
        "trajectories": trajectory_cases(rng),
        "selection": selection_cases(rng),
        "edis_filter": filt,
        "edis_weights": weights,
        "auroc": aurocs,
        "pass_at_k": passk,
        "maj_at_k": majk,
        "high_entropy_mask": entropy_mask_cases(rng),
    }
    out["best_k_of_n_pools"] = best_k_of_n_pools(out["selection"])  # no random draws
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT} ({len(out['trajectories'])} trajectories, {len(out['selection'])} selection sets)")


if __name__ == "__main__":
    main()
