#!/usr/bin/env python3
"""Golden values for EM-INF and the adaptive-temperature baseline, from an independent torch
implementation of the released code (shivamag125/EM_PT @91cda30, eval/utils/em_inf_utils.py, as
described in docs/METHODS.md §8): torch.optim.Adam on an f32 copy of the logits, F.kl_div with
reduction="batchmean", the entropy checked before each step; bisection on the temperature.

Writes tests/fixtures/em_inf_golden.json.  Run: .venv/bin/python scripts/oracle/em_inf_golden.py
Batch size 1 (the released EM-INF sums the entropy over the batch; entrl works per row).
Inputs come from a xorshift generator that the Rust test re-implements, so the fixture stores
only parameters and outputs. For the 49152-token vocabulary only sampled indices are stored.
"""
import json
import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "em_inf_golden.json"
MASK = (1 << 64) - 1


def logits(seed, v, scale, spike):
    """v logits: scale·(2u − 1) with u from xorshift64, plus `spike` on index seed % v; f32."""
    x = (seed * 0x9E3779B97F4A7C15 + 1) & MASK
    out = []
    for _ in range(v):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        u = (x >> 40) / float(1 << 24)
        out.append(scale * (2.0 * u - 1.0))
    out[seed % v] += spike
    return np.asarray(out, dtype=np.float32)


def em_inf(z0_np, threshold, kl_weight, lr, n_grad_steps):
    z0 = torch.tensor(z0_np, dtype=torch.float32)[None, :]
    p0 = F.softmax(z0, dim=-1).detach()
    z = torch.nn.Parameter(z0.clone())
    opt = torch.optim.Adam([z], lr=lr)
    steps = 0
    for _ in range(n_grad_steps):
        opt.zero_grad()
        p = F.softmax(z, dim=-1)
        h = -torch.sum(p * torch.log(p + 1e-12), dim=-1).sum()
        if h.item() < threshold:
            break
        loss = kl_weight * F.kl_div(p.log(), p0, reduction="batchmean") + h
        loss.backward()
        opt.step()
        steps += 1
    return z.detach()[0].numpy(), steps


def adaptive(z_np, t_min, t_max, max_iter, tol, ratio, threshold):
    z = torch.tensor(z_np, dtype=torch.float32)

    def ent(t):
        p = F.softmax(z / t, dim=-1)
        return -torch.sum(p * torch.log(p + 1e-9)).item()

    h0 = ent(1.0)
    target = max(threshold, ratio * h0)
    t, iters = 1.0, 0
    if h0 > threshold:
        lo, hi = t_min, t_max
        for _ in range(max_iter):
            t = (lo + hi) / 2
            iters += 1
            h = ent(t)
            if abs(h - target) < tol:
                break
            elif h < target:
                lo = t
            else:
                hi = t
    return (z / t).numpy(), t, iters


def stored(z_in, z_out):
    v = len(z_in)
    if v <= 1000:
        idx = list(range(v))
    else:
        top = np.argsort(-z_in, kind="stable")[:64].tolist()
        idx = sorted(set(top) | set(range(0, v, 97)))
    return idx, [float(z_out[i]) for i in idx]


EM_PRESETS = {
    "released": dict(threshold=0.3, kl_weight=0.05, lr=0.1, n_grad_steps=3),
    "function_defaults": dict(threshold=0.3, kl_weight=0.001, lr=0.1, n_grad_steps=5),
    "threshold_above_entropy": dict(threshold=20.0, kl_weight=0.05, lr=0.1, n_grad_steps=3),
}
AT_PRESETS = {
    "class_defaults": dict(t_min=0.01, t_max=1.0, max_iter=100, tol=0.1, ratio=0.2, threshold=1e-6),
    "released": dict(t_min=0.01, t_max=1.0, max_iter=100, tol=0.1, ratio=0.85, threshold=1e-5),
    "alpha_0.5": dict(t_min=0.01, t_max=1.0, max_iter=100, tol=0.1, ratio=0.5, threshold=1e-5),
}
# (scale, spike): low, middle and high entropy regimes
REGIMES = {"peaked": (2.0, 14.0), "middle": (3.0, 4.0), "flat": (1.0, 0.0)}


def main():
    torch.manual_seed(0)
    cases = []
    for v in [8, 64, 1000, 49152]:
        for r, (scale, spike) in REGIMES.items():
            seed = v * 7 + len(r)
            z = logits(seed, v, scale, spike)
            p = torch.softmax(torch.tensor(z, dtype=torch.float64), -1)
            h = float(-(p * torch.log(p)).sum())
            base = dict(vocab=v, seed=seed, scale=scale, spike=spike, regime=r, entropy=h)
            for name, cfg in EM_PRESETS.items():
                out, steps = em_inf(z, **cfg)
                idx, vals = stored(z, out)
                cases.append(dict(base, method="em_inf", preset=name, config=cfg, steps=steps, indices=idx, values=vals))
            for name, cfg in AT_PRESETS.items():
                out, t, iters = adaptive(z, **cfg)
                idx, vals = stored(z, out)
                cases.append(dict(base, method="adaptive_temperature", preset=name, config=cfg,
                                  temperature=t, iterations=iters, indices=idx, values=vals))
    meta = dict(torch=torch.__version__, generator="xorshift64 (<<13, >>7, <<17), u = (x >> 40) / 2^24")
    OUT.write_text(json.dumps(dict(meta=meta, cases=cases)))
    print(f"wrote {OUT} ({len(cases)} cases)")
    for c in cases:
        extra = f"steps {c['steps']}" if c["method"] == "em_inf" else f"T {c['temperature']:.4f} iters {c['iterations']}"
        print(f"  V={c['vocab']:6d} {c['regime']:7s} H={c['entropy']:.3f} {c['method']:21s} {c['preset']:24s} {extra}")


if __name__ == "__main__":
    main()
