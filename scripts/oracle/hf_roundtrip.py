#!/usr/bin/env python3
"""Checkpoints written by entrl load in Hugging Face transformers with no conversion and give the
same logits as entrl itself.

Five checkpoints are written by entrl's own writer: a seeded from-scratch tiny model
(`entrl init`), SmolLM2-135M-Instruct loaded and saved again (`entrl resave`), and the same in
bfloat16 (`entrl resave --bf16`, the writer of `checkpoint.final_dtype = "bf16"`), and the tiny
Qwen3 and Llama-3.x fixtures of scripts/oracle/new_archs_golden.py loaded and saved again (QK-norm
weights, `rope_scaling` of type `llama3`). transformers
loads each with AutoModelForCausalLM (and the tokenizer with AutoTokenizer), and its float32
logits are compared with `entrl logits` on the same ids.

Run (after `cargo build --release` and scripts/fetch_assets.sh):
    .venv/bin/python scripts/oracle/hf_roundtrip.py
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENTRL = ROOT / "target" / "release" / "entrl"


def entrl(*args):
    return subprocess.run([str(ENTRL), *args], check=True, capture_output=True, text=True, cwd=ROOT).stdout


def check(name, model_dir, ids):
    ours = np.array(json.loads(entrl("logits", "--model", str(model_dir), "--ids", ",".join(map(str, ids)))))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits[0].numpy()
    diff = float(np.abs(ours - theirs).max())
    print(f"{name}: {type(model).__name__} loaded; {len(ids)} tokens x {theirs.shape[1]} vocab, max |entrl - transformers| = {diff:.2e}")
    return diff


def main():
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        tiny = pathlib.Path(tmp) / "tiny"
        entrl("init", "--config", "configs/model/tiny.toml", "--out", str(tiny), "--seed", "7")
        tok = AutoTokenizer.from_pretrained(tiny)
        ids = tok("Q: 12+30=?\nA: 42", add_special_tokens=False)["input_ids"]
        worst = max(worst, check("tiny (entrl init)", tiny, ids))

        smol = ROOT / "assets" / "SmolLM2-135M-Instruct"
        resaved = pathlib.Path(tmp) / "smollm2"
        entrl("resave", "--model", str(smol), "--out", str(resaved))
        tok = AutoTokenizer.from_pretrained(resaved)
        ids = tok("<|im_start|>user\nWhat is 12 plus 30?<|im_end|>\n", add_special_tokens=False)["input_ids"]
        worst = max(worst, check("SmolLM2-135M-Instruct (entrl resave)", resaved, ids))

        # bfloat16 weights (what `checkpoint.final_dtype = "bf16"` writes into final/): transformers
        # loads them (upcast to float32 here, as entrl does) and gets entrl's logits
        bf16 = pathlib.Path(tmp) / "smollm2_bf16"
        entrl("resave", "--model", str(smol), "--out", str(bf16), "--bf16")
        size = (bf16 / "model.safetensors").stat().st_size
        print(f"bf16 model.safetensors: {size / 1e6:.0f} MB (f32: {(resaved / 'model.safetensors').stat().st_size / 1e6:.0f} MB)")
        native = AutoModelForCausalLM.from_pretrained(bf16)
        print(f"  loaded with the config's dtype: {next(native.parameters()).dtype}")
        worst = max(worst, check("SmolLM2-135M-Instruct bf16 (entrl resave --bf16)", bf16, ids))

        for name in ["qwen3_tiny", "llama3_tiny"]:
            out = pathlib.Path(tmp) / name
            entrl("resave", "--model", str(ROOT / "tests" / "fixtures" / "models" / name), "--out", str(out))
            worst = max(worst, check(f"{name} (entrl resave)", out, list(range(3, 43))))
    ok = worst <= 1e-3
    print(("PASS" if ok else "FAIL") + f": worst max abs diff {worst:.2e} (tolerance 1e-3)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
