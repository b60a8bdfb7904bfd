#!/usr/bin/env python3
"""Table of finished runs (standard library only): for each arm (run name without its -sN seed
suffix), mean ± sample std and [min, max] over seeds of held-out greedy accuracy before/after
RL and its change, greedy-completion token entropy before/after, and mean EDIS over the last 10
training steps' completions.
   scripts/experiments/aggregate.py checkpoints/exp [arm-prefix ...]
"""
import json
import pathlib
import re
import statistics
import sys


def run_figures(d):
    s = json.loads((d / "summary.json").read_text())
    ev, train = {}, []
    for line in (d / "metrics.jsonl").read_text().splitlines():
        j = json.loads(line)
        if "eval/label" in j:
            ev[j["eval/label"]] = j
        elif j.get("phase") == "rl":
            train.append(j)
    pre, fin = ev["before_rl"], ev["final"]
    last = train[-10:]
    return {
        "acc_before": 100 * pre["eval/greedy_accuracy"],
        "acc_after": 100 * fin["eval/greedy_accuracy"],
        "acc_change": 100 * (fin["eval/greedy_accuracy"] - pre["eval/greedy_accuracy"]),
        "H_before": pre["eval/entropy_raw"],
        "H_after": fin["eval/entropy_raw"],
        "edis_last10": statistics.mean(t["edis/mean"] for t in last) if last else float("nan"),
        "seconds": s["seconds"],
    }


def fmt(v, digits):
    m = statistics.mean(v)
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{m:.{digits}f} ± {sd:.{digits}f} [{min(v):.{digits}f}, {max(v):.{digits}f}]"


def main():
    root = pathlib.Path(sys.argv[1])
    prefixes = sys.argv[2:]
    arms = {}
    for d in sorted(root.iterdir()):
        if not (d / "summary.json").exists():
            continue
        arm = re.sub(r"-s\d+$", "", d.name)
        if prefixes and not any(arm.startswith(p) for p in prefixes):
            continue
        arms.setdefault(arm, []).append(run_figures(d))
    cols = [("acc_before", 1), ("acc_after", 1), ("acc_change", 1), ("H_before", 4), ("H_after", 4), ("edis_last10", 4)]
    print("| arm | seeds | " + " | ".join(c for c, _ in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for arm, runs in arms.items():
        cells = [fmt([r[c] for r in runs], k) for c, k in cols]
        print(f"| {arm} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
