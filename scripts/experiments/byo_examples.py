#!/usr/bin/env python3
"""Writes the bring-your-own example datasets in data/examples/: one-digit additions and
subtractions (two data sources, "add" and "sub") in TRL's columns and in verl's, a train and a
test file each. Deterministic (seeded); the files are committed, this script documents them.

TRL:  {"prompt": "7+5=?", "answer": "12", "solution": "7+5=12\\n#### 12", "data_source": "add"}
verl: {"data_source": "add", "prompt": [{"role": "user", "content": "7+5=?"}], "ability": "math",
       "reward_model": {"style": "rule", "ground_truth": "12"},
       "extra_info": {"split": "train", "index": 0, "solution": "7+5=12\\n#### 12"}}

Run:  python3 scripts/experiments/byo_examples.py
"""
import json
import pathlib
import random

OUT = pathlib.Path(__file__).resolve().parents[2] / "data" / "examples"


def problems(rng, n):
    for _ in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        op, source = rng.choice([("+", "add"), ("-", "sub")])
        value = a + b if op == "+" else a - b
        yield f"{a}{op}{b}=?", str(value), f"{a}{op}{b}={value}\n#### {value}", source


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2026)
    for split, n in [("train", 400), ("test", 100)]:
        rows = list(problems(rng, n))
        with open(OUT / f"trl_arith_{split}.jsonl", "w") as f:
            for q, a, s, src in rows:
                f.write(json.dumps({"prompt": q, "answer": a, "solution": s, "data_source": src}) + "\n")
        with open(OUT / f"verl_arith_{split}.jsonl", "w") as f:
            for i, (q, a, s, src) in enumerate(rows):
                f.write(json.dumps({
                    "data_source": src,
                    "prompt": [{"role": "user", "content": q}],
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": a},
                    "extra_info": {"split": split, "index": i, "solution": s},
                }) + "\n")
    print(f"wrote {sorted(p.name for p in OUT.glob('*.jsonl'))}")


if __name__ == "__main__":
    main()
