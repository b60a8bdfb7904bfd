#!/usr/bin/env python3
"""A reward program for entrl: the built-in `accuracy` reward (extractor "hash"), in Python.

entrl starts this once and keeps it running. Each request is one JSON line on stdin:
    {"batch": [{"prompt": ..., "completion": ..., "answer": ..., "data_source": ...,
                "length": <tokens>, "extra": {<the dataset row's other columns>}}, ...]}
and each answer one JSON line on stdout (flushed):
    {"rewards": [...], "correct": [...], "components": {"name": [...]}, "metrics": {"name": x}}
Only "rewards" is required. Anything printed to stderr shows in entrl's error if the program fails.

Use it in a run file:
    [[rewards]]
    function = { kind = "program", command = ["python3", "rewards/programs/hash_accuracy.py"], name = "accuracy" }
    weight = 1.0
"""
import json
import sys


def extract_hash(text):
    """Text after the last '####', up to the end of that line, trimmed (None if empty)."""
    i = text.rfind("####")
    if i < 0:
        return None
    rest = text[i + 4:].split("\n", 1)[0].strip()
    return rest or None


def parse_number(s):
    t = s.strip().rstrip(".").replace(",", "").replace("$", "").replace(" ", "")
    for w in ("\\%", "%", "\\!", "dollars", "\\$"):
        t = t.replace(w, "")
    try:
        if "/" in t:
            a, b = t.split("/", 1)
            return float(a) / float(b) if float(b) != 0 else None
        x = float(t)
        return x if x == x and abs(x) != float("inf") else None
    except ValueError:
        return None


def equal(pred, gold):
    a, b = parse_number(pred), parse_number(gold)
    if a is not None and b is not None:
        return abs(a - b) <= 1e-6 * max(abs(b), 1.0)
    norm = lambda s: "".join(s.strip().rstrip(".").split()).lower()
    return norm(pred) != "" and norm(pred) == norm(gold)


def score(item):
    pred = extract_hash(item["completion"])
    return pred, 1.0 if pred is not None and equal(pred, item["answer"]) else 0.0


def main():
    for line in sys.stdin:
        batch = json.loads(line)["batch"]
        scored = [score(item) for item in batch]
        rewards = [r for _, r in scored]
        answer = {
            "rewards": rewards,
            "correct": [r > 0.5 for r in rewards],
            "components": {"has_answer": [float(p is not None) for p, _ in scored]},
            "metrics": {"batch_size": len(batch)},
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
