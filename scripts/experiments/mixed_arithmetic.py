#!/usr/bin/env python3
"""Write a JSONL (gsm8k layout: question, answer = worked solution ending in '#### N') of
arithmetic chains of mixed difficulty, in the synthetic `arithmetic` task's own format
("7+5-3=?" / "7+5=12\\n12-3=9\\n#### 9"), for a from-scratch model whose accuracy should spread
across difficulty levels (configs/sentinel_arith.toml).

Mix: operands uniform in {2, 3, 4, 5}; operands of 1 digit (80%) or 2 digits (20%); a problem
allows '*' (single-digit right operand) with probability 0.2. Seeded (Python's random, seed 0).
Run: python3 scripts/experiments/mixed_arithmetic.py data/generated/mixed_arithmetic.jsonl 20000
"""
import json
import pathlib
import random
import sys


def problem(rng):
    operands = rng.choice([2, 3, 4, 5])
    digits = 1 if rng.random() < 0.8 else 2
    ops = ["+", "-"] + (["*"] if rng.random() < 0.2 else [])
    top = 10 ** digits - 1
    acc = rng.randint(0, top)
    question, lines = str(acc), []
    for _ in range(operands - 1):
        op = rng.choice(ops)
        b = rng.randint(0, 9) if op == "*" else rng.randint(0, top)
        r = acc + b if op == "+" else acc - b if op == "-" else acc * b
        if op == "*" and ("+" in question or "-" in question[1:]):
            question = f"({question}){op}{b}"
        else:
            question = f"{question}{op}{b}"
        lines.append(f"{acc}{op}{b}={r}")
        acc = r
    lines.append(f"#### {acc}")
    return {"question": f"{question}=?", "answer": "\n".join(lines)}


def main():
    out, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(0)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for _ in range(n):
            f.write(json.dumps(problem(rng)) + "\n")
    print(f"wrote {n} problems to {out}")


if __name__ == "__main__":
    main()
