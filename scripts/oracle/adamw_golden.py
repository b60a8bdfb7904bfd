#!/usr/bin/env python3
"""Golden values for entrl's AdamW + global-norm clipping: torch.optim.AdamW and
torch.nn.utils.clip_grad_norm_ on two parameters (a matrix with weight decay, a vector without,
as entrl applies decay to matrices only), four steps with given gradients and learning rates.
Writes tests/fixtures/adamw_golden_torch.json.  Run: .venv/bin/python scripts/oracle/adamw_golden.py
"""
import json
import pathlib

import torch

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "adamw_golden_torch.json"


def main():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
    b = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
    init = {"w": w.detach().clone().tolist(), "b": b.detach().clone().tolist()}
    opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                            lr=1.0, betas=(0.9, 0.95), eps=1e-8)
    lrs = [0.01, 0.02, 0.015, 0.005]
    steps = []
    for lr in lrs:
        gw = torch.randn(3, 4, dtype=torch.float64) * 2
        gb = torch.randn(4, dtype=torch.float64) * 2
        w.grad, b.grad = gw.clone(), gb.clone()
        norm = torch.nn.utils.clip_grad_norm_([w, b], max_norm=1.0).item()
        for gr in opt.param_groups:
            gr["lr"] = lr
        opt.step()
        steps.append({"lr": lr, "grad_w": gw.tolist(), "grad_b": gb.tolist(), "norm": norm,
                      "w": w.detach().tolist(), "b": b.detach().tolist()})
    OUT.write_text(json.dumps({"generator": "scripts/oracle/adamw_golden.py",
                               "reference": f"torch {torch.__version__} AdamW(betas=(0.9,0.95), eps=1e-8, wd=0.1 on w) + clip_grad_norm_(1.0), float64",
                               "init": init, "steps": steps}, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
