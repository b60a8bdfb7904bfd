#!/usr/bin/env python3
"""Tiny random Qwen3 and Llama-3.x models made by transformers, with their float64 logits.

No weights are downloaded: transformers builds each model from a config with a fixed seed and
saves it (config.json + model.safetensors, float32) under tests/fixtures/models/<name>/; the
logits of a fixed id sequence, computed by transformers in float64 from those float32 weights,
go to tests/fixtures/new_archs_golden.json. entrl must load each directory and reproduce the
logits within 1e-4 (tests/new_archs.rs).

- qwen3_tiny: QK-norm (an RMSNorm over each head's queries and keys before the rotation),
  explicit head_dim != hidden/heads, tied embeddings; saved by save_pretrained as transformers 5
  writes it (`rope_parameters` holding `rope_theta`).
- llama3_tiny: Llama 3.x rotary scaling of type `llama3` (factor 8, low/high frequency factors
  1 and 4, original context 16 so that positions 0..40 cross all three frequency bands), written
  the way the Hub's Llama-3.2 config.json is (top-level `rope_theta` and `rope_scaling`).

Run:  .venv/bin/python scripts/oracle/new_archs_golden.py
"""
import json
import pathlib

import numpy as np
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "fixtures" / "models"
OUT = ROOT / "tests" / "fixtures" / "new_archs_golden.json"
VOCAB = 96
IDS = [int(i) for i in np.random.default_rng(5).integers(0, VOCAB, 40)]


def qwen3():
    return Qwen3Config(
        vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
        max_position_embeddings=128, tie_word_embeddings=True, bos_token_id=0, eos_token_id=1,
        rope_theta=10000.0,
    ), Qwen3ForCausalLM


def llama3():
    return LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, max_position_embeddings=128,
        tie_word_embeddings=False, bos_token_id=0, eos_token_id=[1, 2], rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
    ), LlamaForCausalLM


def randomise(model, seed):
    """Norm weights away from 1 so a skipped norm shows (transformers initialises them to ones)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def hub_style_llama_config(path):
    """Rewrite config.json as the Hub's Llama-3.2 files are: rope_theta and rope_scaling at top level."""
    cfg = json.loads(path.read_text())
    params = cfg.pop("rope_parameters")
    cfg["rope_theta"] = params.pop("rope_theta")
    cfg["rope_scaling"] = params
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def main():
    torch.manual_seed(0)
    cases = {}
    for seed, (name, make) in enumerate([("qwen3_tiny", qwen3), ("llama3_tiny", llama3)]):
        config, cls = make()
        model = cls(config).float().eval()
        randomise(model, seed + 11)
        out = MODELS / name
        model.save_pretrained(out, safe_serialization=True)
        (out / "generation_config.json").unlink(missing_ok=True)  # not read by entrl nor needed here
        if name == "llama3_tiny":
            hub_style_llama_config(out / "config.json")
        # reload what was written, so the logits belong to the files (float32 weights, float64 math)
        model = cls.from_pretrained(out, dtype=torch.float32).double().eval()
        with torch.no_grad():
            logits = model(torch.tensor([IDS])).logits[0].numpy()
        cases[name] = {"model_type": config.model_type, "ids": IDS, "logits": logits.tolist()}
        print(f"{name}: {type(model).__name__}, {sum(p.numel() for p in model.parameters())} params, logits {logits.shape}")
    OUT.write_text(json.dumps({
        "generator": f"transformers {transformers.__version__}, torch {torch.__version__} (float64)",
        "cases": cases,
    }) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
