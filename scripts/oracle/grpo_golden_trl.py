#!/usr/bin/env python3
"""Golden values for entrl's GRPO-family losses and advantage estimators, from TRL itself.

Loss: TRL 1.16's own `GRPOTrainer._compute_loss`, called with a stand-in `self` whose
`_get_per_token_logps_and_entropies` returns fixed per-token log-probs (as a leaf tensor, so torch
autograd also gives d loss / d logp, which checks our backward pass). Every other line of the loss
(ratio, clipping, k3 KL, the four aggregations) is TRL's code, unmodified.

Advantages: TRL computes them inside its generation loop, which cannot be called in isolation, so
the formulas are transcribed from `_generate_and_score_completions` (GRPO: group mean, TRL's
`nanstd` (unbiased), `+ 1e-4`) and `RLOOTrainer` (leave-one-out baseline), using TRL's `nanstd`.

Writes tests/fixtures/grpo_golden_trl.json.  Run: .venv/bin/python scripts/oracle/grpo_golden_trl.py
"""
import collections
import json
import pathlib
import types

import torch
import trl
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.utils import nanstd

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "grpo_golden_trl.json"


def grpo_advantages(rewards, g, scale):
    mean = rewards.view(-1, g).mean(dim=1).repeat_interleave(g)
    if scale in ("group", "none"):
        std = nanstd(rewards.view(-1, g), dim=1).repeat_interleave(g)
    else:  # batch
        std = nanstd(rewards).expand_as(rewards)
    adv = rewards - mean
    if scale != "none":
        adv = adv / (std + 1e-4)
    return adv


def rloo_advantages(rewards, g):
    grouped = rewards.view(-1, g)
    baseline = (grouped.sum(dim=1, keepdim=True) - grouped) / (g - 1)
    return (grouped - baseline).view(-1)


def trl_loss(logps, old, ref, mask, adv, loss_type, beta, eps_lo, eps_hi, max_len):
    b, t = logps.shape
    leaf = logps.clone().requires_grad_(True)
    fake = types.SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (leaf, torch.zeros_like(leaf), None),
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        beta=beta,
        args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        loss_type=loss_type,
        epsilon_low=eps_lo,
        epsilon_high=eps_hi,
        use_vllm=False,
        model=types.SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        max_completion_length=max_len,
        accelerator=types.SimpleNamespace(num_processes=1, gather=lambda x: x, reduce=lambda x, reduction: x),
        _entropy_bonus_enabled=False,
        aux_loss_enabled=False,
        _metrics=collections.defaultdict(lambda: collections.defaultdict(list)),
    )
    inputs = {
        "prompt_ids": torch.zeros(b, 1, dtype=torch.long),
        "prompt_mask": torch.ones(b, 1, dtype=torch.long),
        "completion_ids": torch.zeros(b, t, dtype=torch.long),
        "completion_mask": mask.long(),
        "advantages": adv,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
        "num_items_in_batch": mask.sum(),
    }
    loss = GRPOTrainer._compute_loss(fake, None, inputs)
    loss.backward()
    m = fake._metrics["train"]
    return loss.item(), leaf.grad, {k: v[0] for k, v in m.items() if v}


def main():
    torch.manual_seed(0)
    g, n_groups, t = 4, 3, 6
    b = g * n_groups
    logps = -torch.rand(b, t, dtype=torch.float64) * 3 - 0.05
    old = logps + (torch.rand(b, t, dtype=torch.float64) - 0.5) * 0.8  # ratios from ~0.67 to ~1.5: clipping happens
    ref = logps + (torch.rand(b, t, dtype=torch.float64) - 0.5) * 0.6
    lengths = torch.tensor([6, 5, 1, 3, 6, 2, 4, 6, 6, 3, 5, 1])
    mask = (torch.arange(t)[None, :] < lengths[:, None]).double()
    # group 0 mixed, group 1 all equal (zero std -> zero advantage), group 2 mixed with partial credit
    rewards = torch.tensor([1, 0, 0, 1, 1, 1, 1, 1, 0.5, 0, 1, 0.25], dtype=torch.float64)

    advantages = {s: grpo_advantages(rewards, g, s).tolist() for s in ("group", "batch", "none")}
    advantages["rloo"] = rloo_advantages(rewards, g).tolist()

    cases = []
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):
        for beta in (0.0, 0.04):
            for eps_lo, eps_hi in ((0.2, 0.2), (0.2, 0.28)):
                for adv_kind in ("group", "rloo"):
                    adv = torch.tensor(advantages[adv_kind], dtype=torch.float64)
                    loss, grad, metrics = trl_loss(logps, old, ref, mask, adv, loss_type, beta, eps_lo, eps_hi, t)
                    cases.append({
                        "loss_type": loss_type, "beta": beta, "epsilon": eps_lo, "epsilon_high": eps_hi,
                        "advantages": adv_kind, "loss": loss, "grad_logps": grad.tolist(), "metrics": metrics,
                    })
    OUT.write_text(json.dumps({
        "generator": "scripts/oracle/grpo_golden_trl.py",
        "reference": f"trl {trl.__version__} GRPOTrainer._compute_loss, torch {torch.__version__}, float64",
        "group_size": g,
        "max_completion_length": t,
        "logps": logps.tolist(), "old_logps": old.tolist(), "ref_logps": ref.tolist(),
        "mask": mask.tolist(), "rewards": rewards.tolist(),
        "advantages": advantages,
        "cases": cases,
    }, indent=1))
    print(f"wrote {OUT}: {len(cases)} loss cases")


if __name__ == "__main__":
    main()
