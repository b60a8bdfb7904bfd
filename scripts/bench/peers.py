#!/usr/bin/env python3
"""entrl against its Python peers on this machine, side by side, in one run (issue 11).

Matched work, SmolLM2-135M-Instruct in float32, both sides pinned to the same number of threads:
  rollout:    HF `generate` of P prompts x G samples x N new tokens (sampling, EOS disabled)
              vs `entrl bench` rollout of the same shape;
  train step: PyTorch eager forward + backward + AdamW at B x T random tokens, loss on every
              position, vs `entrl bench`'s train phase of the same shape.
Rounds are interleaved (peer, entrl, peer, entrl, ...) and medians reported; the ratios and the
machine's details are printed and appended to docs/BENCHMARKS.md.
(The GRPO-step comparison with TRL's GRPOTrainer is not in this script yet.)

Run:  cargo build --release && scripts/fetch_assets.sh
      python3 scripts/bench/peers.py [--venv .bench-venv] [--rounds 3] [--threads 2]
The first run creates the virtual environment and installs scripts/bench/requirements.txt into it.
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "assets" / "SmolLM2-135M-Instruct"
ENTRL = ROOT / "target" / "release" / "entrl"


def ensure_venv(venv):
    """Re-executes this script under the venv's python, creating it first if needed."""
    py = venv / "bin" / "python"
    if pathlib.Path(sys.prefix).resolve() == venv.resolve():
        return
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "-r",
                        str(ROOT / "scripts" / "bench" / "requirements.txt")], check=True)
    os.execv(str(py), [str(py), *sys.argv])


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags():
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split()
        return "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else "no AVX2")
    except (OSError, StopIteration):
        return "?"


def hf_generate(model, prompts, group, new_tokens):
    import torch
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(MODEL)
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True)
    enc = {k: v.repeat_interleave(group, 0) for k, v in enc.items()}
    kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new_tokens,
              min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id or 0)
    with torch.no_grad():
        model.generate(**{k: v[:1] for k, v in enc.items()}, **{**kw, "max_new_tokens": 2, "min_new_tokens": 2})
        t = time.perf_counter()
        out = model.generate(**enc, **kw)
        secs = time.perf_counter() - t
    toks = (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
    return toks / secs


def torch_train(model, batch, length, vocab):
    import torch
    ids = torch.tensor([[(5 + 37 * i + 53 * b) % vocab for i in range(length)] for b in range(batch)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step():
        t = time.perf_counter()
        logits = model(ids).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t

    step()
    return batch * length / min(step() for _ in range(2))


def entrl_bench(a):
    out = ROOT / "target" / "bench_peers.json"
    env = {**os.environ, "RAYON_NUM_THREADS": str(a.threads)}
    subprocess.run([str(ENTRL), "bench", "--model", str(MODEL), "--prompts", str(a.prompts),
                    "--group", str(a.group), "--new-tokens", str(a.new_tokens), "--train-batch",
                    str(a.batch), "--train-len", str(a.length), "--train-steps", "2", "--json", str(out)],
                   check=True, env=env, capture_output=True)
    res = json.loads(out.read_text())["results"]
    pick = lambda phase: next(r["tokens_per_s"] for r in res
                              if r["model"] == MODEL.name and r["phase"].startswith(phase))
    return pick("rollout"), pick("train")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--venv", default=str(ROOT / ".bench-venv"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompts", type=int, default=2)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--no-write", action="store_true", help="do not append to docs/BENCHMARKS.md")
    a = p.parse_args()
    ensure_venv(pathlib.Path(a.venv))
    import torch
    import transformers
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
    prompts = ["What is 12 plus 30?", "Natalia sold clips to 48 of her friends in April."][: a.prompts]
    rows = {"hf_generate": [], "entrl_rollout": [], "torch_train": [], "entrl_train": []}
    for r in range(a.rounds):
        model.eval()
        rows["hf_generate"].append(hf_generate(model, prompts, a.group, a.new_tokens))
        model.train()
        rows["torch_train"].append(torch_train(model, a.batch, a.length, model.config.vocab_size))
        roll, train = entrl_bench(a)
        rows["entrl_rollout"].append(roll)
        rows["entrl_train"].append(train)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} tok/s" for k, v in rows.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    roll_ratio = med["entrl_rollout"] / med["hf_generate"]
    train_ratio = med["entrl_train"] / med["torch_train"]
    machine = f"{cpu_name()} ({cpu_flags()}), {os.cpu_count()} cores, {a.threads} threads each side"
    print(f"\n{machine}; torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"rollout {a.prompts}x{a.group}x{a.new_tokens}: entrl {med['entrl_rollout']:.1f} vs HF generate "
          f"{med['hf_generate']:.1f} tok/s -> {roll_ratio:.2f}x (goal >= 2x)")
    print(f"train step B={a.batch} T={a.length}: entrl {med['entrl_train']:.1f} vs PyTorch eager "
          f"{med['torch_train']:.1f} tok/s -> {train_ratio:.2f}x (goal >= 0.7x)")
    if not a.no_write:
        today = datetime.date.today().isoformat()
        section = (
            f"\n## {today}, side by side with the Python peers (`scripts/bench/peers.py`)\n\n"
            f"{machine}; torch {torch.__version__}, transformers {transformers.__version__}; "
            f"SmolLM2-135M-Instruct f32; medians of {a.rounds} interleaved rounds.\n\n"
            "| work | entrl tok/s | peer tok/s | ratio | goal |\n|---|---:|---:|---:|---:|\n"
            f"| rollout {a.prompts} × {a.group} × {a.new_tokens} (no EOS) vs HF `generate` | "
            f"{med['entrl_rollout']:.1f} | {med['hf_generate']:.1f} | {roll_ratio:.2f}× | ≥ 2× |\n"
            f"| train step B = {a.batch}, T = {a.length} (fwd + bwd + AdamW, all positions) vs PyTorch eager | "
            f"{med['entrl_train']:.1f} | {med['torch_train']:.1f} | {train_ratio:.2f}× | ≥ 0.7× |\n"
        )
        with open(ROOT / "docs" / "BENCHMARKS.md", "a") as f:
            f.write(section)
        print("appended to docs/BENCHMARKS.md")


if __name__ == "__main__":
    main()
