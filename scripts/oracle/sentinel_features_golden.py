#!/usr/bin/env python3
"""Golden values for Entropy Sentinel's 17 per-response features, written independently of the
Rust code from the released `core/computations.py` formulas (METHODS-2 §1b), with numpy.

Writes tests/fixtures/sentinel_features_golden.json.
Run: .venv/bin/python scripts/oracle/sentinel_features_golden.py

Each trace is a list of generated tokens; per token: the sampled id, its log-prob, and the top-k
(id, log-prob) entries as the sampler returned them. The token entropy sums -p*lp over the top-k
entries plus the sampled token when it is not among them (no renormalisation). Log-probs are drawn
in float32 and stored as the float64 value of that float32 (the Rust side records f32).

Choices the released code leaves open (torch.std of one value is NaN): for T = 1 the std is 0, so
skewness and kurtosis are 0 as well (0 / (0 + 1e-8)).
"""
import json
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "sentinel_features_golden.json"
NAMES = ["mean", "std", "max", "q10", "q25", "q50", "q75", "q90", "skewness", "kurtosis",
         "se_sum", "nll_avg", "nll_max", "nll_sum", "lntp", "mtp", "ppl"]


def token_entropy(sampled, lp, top):
    entries = [l for (_, l) in top]
    if sampled not in [i for (i, _) in top]:
        entries.append(lp)
    e = np.asarray(entries, dtype=np.float64)
    return float(-(np.exp(e) * e).sum())


def features(h, nll):
    h = np.asarray(h, dtype=np.float64)
    n = np.asarray(nll, dtype=np.float64)
    mean = h.mean()
    std = h.std(ddof=1) if len(h) > 1 else 0.0
    c = h - mean
    qs = np.quantile(h, [0.1, 0.25, 0.5, 0.75, 0.9], method="linear")
    skew = (c ** 3).mean() / (std ** 3 + 1e-8)
    kurt = (c ** 4).mean() / (std ** 4 + 1e-8)
    nl = n * np.log(n + 1e-8)
    return [mean, std, h.max(), *qs, skew, kurt, h.sum(), n.mean(), n.max(), n.sum(),
            nl.sum(), nl.max(), np.exp(n.mean())]


def f32(x):
    return float(np.float32(x))


def random_trace(rng, T, k, vocab=50):
    toks = []
    for _ in range(T):
        logits = rng.normal(0, rng.uniform(0.5, 4.0), vocab)
        lp = logits - np.log(np.exp(logits).sum())
        order = np.argsort(-lp, kind="stable")
        sampled = int(rng.choice(vocab, p=np.exp(lp) / np.exp(lp).sum()))
        top = [(int(i), f32(lp[i])) for i in order[:k]]
        toks.append({"sampled": sampled, "logprob": f32(lp[sampled]), "top": top})
    return toks


def main():
    rng = np.random.default_rng(2601)
    traces = []
    for T, k in [(1, 5), (2, 3), (7, 20), (30, 20), (64, 5), (13, 1)]:
        traces.append(random_trace(rng, T, k))
    # a sampled token outside the top-k, and one inside it (not counted twice)
    traces.append([
        {"sampled": 9, "logprob": f32(-4.0), "top": [(1, f32(-0.5)), (2, f32(-1.2))]},
        {"sampled": 1, "logprob": f32(-0.5), "top": [(1, f32(-0.5)), (2, f32(-1.2))]},
    ])
    # ties: every token the same (std 0), and a certain token (log-prob 0, entropy 0)
    same = {"sampled": 3, "logprob": f32(-0.7), "top": [(3, f32(-0.7)), (4, f32(-0.9))]}
    traces.append([same] * 5)
    traces.append([{"sampled": 0, "logprob": 0.0, "top": [(0, 0.0)]}] * 3)
    cases = []
    for t in traces:
        h = [token_entropy(x["sampled"], x["logprob"], x["top"]) for x in t]
        nll = [-x["logprob"] for x in t]
        cases.append({"tokens": t, "entropies": h, "features": [float(v) for v in features(h, nll)]})
    OUT.write_text(json.dumps({"names": NAMES, "cases": cases}, indent=1) + "\n")
    print(f"wrote {OUT} ({len(cases)} traces)")


if __name__ == "__main__":
    main()
