#!/usr/bin/env python3
"""Golden values for the covariance-based entropy controls and the adaptive entropy coefficient,
from an independent torch implementation of what verl and TRL ship (read in verl @1dda039
`verl/trainer/ppo/core_algos.py` compute_policy_loss_clip_cov / _kl_cov, TRL @f2cd577
GRPOTrainer's adaptive entropy; written here from their definitions, not copied):

* Clip-Cov: cov = (A − masked_mean A)(logp − masked_mean logp); tokens whose clipped branch is the
  larger loss, or outside (lb, ub), or masked are not candidates; max(int(ratio·N_valid), 1) of the
  candidates (randomly in verl: the cases here have no more candidates than that, so all are taken)
  get their clipped surrogate multiplied by 0; token-mean loss.
* KL-Cov: unclipped −A·ρ everywhere; the top max(int(N_valid·ratio), 1) valid tokens by covariance
  get + coef·|logp − old|; token-mean loss.
* adaptive coefficient: after each optimizer step, c ← min(c + δ, max) if the step's token-mean
  entropy ≤ target else max(c − δ, min).
* entropy/cov_logp_adv: mean over valid tokens of the covariance above.

Writes tests/fixtures/cov_golden.json.  Run: .venv/bin/python scripts/oracle/cov_golden.py
"""
import json
import pathlib

import numpy as np
import torch

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "cov_golden.json"


def masked_mean(x, m):
    return (x * m).sum() / m.sum()


def clip_cov(logp, old, adv, mask, eps_lo, eps_hi, ratio, lb, ub):
    logp = logp.clone().requires_grad_(True)
    a = adv[:, None].expand_as(logp)
    rho = torch.exp(logp - old)
    pg1 = -a * rho
    pg2 = -a * torch.clamp(rho, 1 - eps_lo, 1 + eps_hi)
    clip_by_origin = (pg2 > pg1) & (mask > 0)
    cov = (a - masked_mean(a, mask)) * (logp.detach() - masked_mean(logp.detach(), mask))
    cov[mask == 0] = -float("inf")
    cov[clip_by_origin] = -float("inf")
    clip_num = max(int(ratio * mask.sum().item()), 1)
    cand = torch.nonzero((cov < ub) & (cov > lb) & (mask > 0))
    assert len(cand) <= clip_num, "the fixture avoids verl's random pick"
    corr = torch.ones_like(a)
    if len(cand):
        corr[cand[:, 0], cand[:, 1]] = 0
    loss_mat = torch.maximum(pg1, pg2) * corr
    loss = masked_mean(loss_mat, mask)
    loss.backward()
    selected = sorted(int(i) * logp.shape[1] + int(j) for i, j in cand.tolist())
    return loss.item(), logp.grad.numpy().tolist(), selected


def kl_cov(logp, old, adv, mask, ratio, coef):
    logp = logp.clone().requires_grad_(True)
    a = adv[:, None].expand_as(logp)
    d = logp - old
    rho = torch.exp(d)
    pg = -a * rho
    pg_kl = -a * rho + coef * d.abs()
    valid = torch.nonzero(mask.reshape(-1) > 0)[:, 0]
    va, vl = a.reshape(-1)[valid].detach(), logp.reshape(-1)[valid].detach()
    cov = (va - va.mean()) * (vl - vl.mean())
    k = max(1, int(len(cov) * ratio))
    top = valid[torch.topk(cov, k, largest=True).indices]
    sel = torch.zeros(logp.numel(), dtype=torch.bool)
    sel[top] = True
    sel = sel.reshape(logp.shape)
    loss_mat = torch.where(sel, pg_kl, pg)
    loss = masked_mean(loss_mat, mask)
    loss.backward()
    return loss.item(), logp.grad.numpy().tolist(), sorted(int(i) for i in top)


def adaptive(coef, entropies, target, delta, lo, hi):
    out = []
    for h in entropies:
        coef = min(coef + delta, hi) if h <= target else max(coef - delta, lo)
        out.append(coef)
    return out


def batch(rng, b, t, old_shift):
    logp = torch.tensor(-rng.exponential(1.2, (b, t)), dtype=torch.float32)
    old = (logp + torch.tensor(rng.normal(0.0, old_shift, (b, t)), dtype=torch.float32)).clamp(max=0.0)
    adv = torch.tensor(rng.normal(0.0, 1.5, b), dtype=torch.float32)
    lens = rng.integers(t // 2, t + 1, b)
    mask = torch.tensor([[1.0 if j < n else 0.0 for j in range(t)] for n in lens], dtype=torch.float32)
    return logp, old, adv, mask


def main():
    rng = np.random.default_rng(20261123)
    cases = []
    for i, (b, t, shift) in enumerate([(4, 8, 0.0), (6, 10, 0.15), (8, 12, 0.3), (5, 16, 0.05)]):
        logp, old, adv, mask = batch(rng, b, t, shift)
        base = {k: v.numpy().tolist() for k, v in dict(logp=logp, old=old, adv=adv, mask=mask).items()}
        valid = mask > 0
        a = adv[:, None].expand_as(logp)
        cov = (a - masked_mean(a, mask)) * (logp - masked_mean(logp, mask))
        base["cov_logp_adv"] = float(cov[valid].mean())
        for ratio, lb, ub in [(0.5, 1.0, 5.0), (0.6, 0.2, 2.0)]:
            loss, grad, sel = clip_cov(logp, old, adv, mask, 0.2, 0.28, ratio, lb, ub)
            cases.append(dict(base, kind="clip_cov", ratio=ratio, lb=lb, ub=ub, eps_low=0.2, eps_high=0.28,
                              loss=loss, grad=grad, selected=sel))
        for ratio, coef in [(0.02, 1.0), (0.2, 0.5)]:
            loss, grad, sel = kl_cov(logp, old, adv, mask, ratio, coef)
            cases.append(dict(base, kind="kl_cov", ratio=ratio, coef=coef, eps_low=0.2, eps_high=0.28,
                              loss=loss, grad=grad, selected=sel))
    ent = [float(x) for x in rng.uniform(0.0, 0.5, 40)]
    adapt = [dict(start=s, target=0.2, delta=0.005, min=0.0, max=m, entropies=ent,
                  coefs=adaptive(s, ent, 0.2, 0.005, 0.0, m)) for s, m in [(0.0, 1.0), (0.02, 0.03)]]
    OUT.write_text(json.dumps(dict(source="scripts/oracle/cov_golden.py (torch " + torch.__version__ + ")",
                                   cases=cases, adaptive=adapt)))
    print(f"wrote {OUT}: {len(cases)} loss cases, selected per case:",
          [len(c["selected"]) for c in cases])


if __name__ == "__main__":
    main()
