#!/usr/bin/env python3
"""entrl against its Python peers on this machine, side by side, in one run (issue 11).

Matched work, SmolLM2-135M-Instruct in float32, both sides pinned to the same number of threads:
  rollout:    HF `generate` of P prompts x G samples x N new tokens (sampling, EOS disabled)
              vs `entrl bench` rollout of the same shape;
  train step: PyTorch eager forward + backward + AdamW at B x T random tokens, loss on every
              position, vs `entrl bench`'s train phase of the same shape.
  GRPO step:  TRL's GRPOTrainer (scripts/bench/trl_grpo_step.py, its own process) vs `entrl train
              configs/bench/grpo_step_smollm2.toml`: one GSM8K prompt x 8 samples of <= 64 tokens,
              beta = 0, one iteration; steps 2.. of each run are timed (step 1 warms up). Reported:
              step seconds, the update part of the step (the step less generation and rewards),
              completion lengths, completion tokens/s, and each process's peak resident memory.
  SFT memory: peak resident memory of `entrl train configs/bench/sft_step_smollm2.toml`.
Rounds are interleaved (peer, entrl, peer, entrl, ...) and medians reported; the ratios and the
machine's details are printed and appended to docs/BENCHMARKS.md.

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


def run_peak_mb(cmd, env, log):
    """Runs `cmd` from the repository root; returns the process's peak resident memory in MB.

    Measured by GNU time around the command: the rusage of a child forked from this process would
    count this process's own resident memory (torch and a model) from before the exec."""
    peak_file = pathlib.Path(str(log) + ".peak_kb")
    with open(log, "w") as out:
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(peak_file), *[str(c) for c in cmd]],
                              cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed; see {log}")
    return int(peak_file.read_text().split()[-1]) / 1024


def trl_grpo(a):
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "TOKENIZERS_PARALLELISM": "false"}
    log = ROOT / "target" / "bench" / "trl_grpo_step.log"
    peak = run_peak_mb([sys.executable, ROOT / "scripts" / "bench" / "trl_grpo_step.py", "--threads", a.threads,
                        "--steps", a.grpo_steps], env, log)
    r = json.loads(log.read_text().strip().splitlines()[-1])
    steps, gens = r["step_s"][1:], r["generation_s"][1:]
    return {"step_s": statistics.median(steps),
            "update_s": statistics.median(s - g for s, g in zip(steps, gens)),
            "length": statistics.mean(r["mean_length"][1:]), "peak_mb": peak}


def entrl_train_run(config, a, extra=()):
    """Runs `entrl train config`; returns (its metrics rows, peak resident memory in MB)."""
    out = ROOT / "target" / "bench" / pathlib.Path(config).stem
    env = {**os.environ, "RAYON_NUM_THREADS": str(a.threads)}
    peak = run_peak_mb([ENTRL, "train", ROOT / config, "--overwrite", "--set", f'output_dir="{out}"', *extra],
                       env, out.with_suffix(".log"))
    return [json.loads(l) for l in open(out / "metrics.jsonl")], peak


def entrl_grpo(a):
    rows, peak = entrl_train_run("configs/bench/grpo_step_smollm2.toml", a, ["--set", f"rl.steps={a.grpo_steps}"])
    rl = [r for r in rows if r.get("phase") == "rl"][1:]
    return {"step_s": statistics.median(r["time/step_s"] for r in rl),
            "update_s": statistics.median(r["time/step_s"] - r["time/rollout_s"] for r in rl),
            "length": statistics.mean(r["completion_length/mean"] for r in rl), "peak_mb": peak}


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
    p.add_argument("--grpo-steps", type=int, default=4, help="GRPO steps per run (the first warms up)")
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
    grpo = {"trl": [], "entrl": []}
    (ROOT / "target" / "bench").mkdir(parents=True, exist_ok=True)
    for r in range(a.rounds):
        model.eval()
        rows["hf_generate"].append(hf_generate(model, prompts, a.group, a.new_tokens))
        model.train()
        rows["torch_train"].append(torch_train(model, a.batch, a.length, model.config.vocab_size))
        roll, train = entrl_bench(a)
        rows["entrl_rollout"].append(roll)
        rows["entrl_train"].append(train)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} tok/s" for k, v in rows.items()), flush=True)
        if a.grpo_steps > 1:
            grpo["trl"].append(trl_grpo(a))
            grpo["entrl"].append(entrl_grpo(a))
            print(f"round {r + 1} GRPO step: " + ", ".join(
                f"{k} {v[-1]['step_s']:.2f} s (update {v[-1]['update_s']:.2f} s, {v[-1]['length']:.1f} tokens, "
                f"{v[-1]['peak_mb']:.0f} MB)" for k, v in grpo.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    roll_ratio = med["entrl_rollout"] / med["hf_generate"]
    train_ratio = med["entrl_train"] / med["torch_train"]
    machine = f"{cpu_name()} ({cpu_flags()}), {os.cpu_count()} cores, {a.threads} threads each side"
    print(f"\n{machine}; torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"rollout {a.prompts}x{a.group}x{a.new_tokens}: entrl {med['entrl_rollout']:.1f} vs HF generate "
          f"{med['hf_generate']:.1f} tok/s -> {roll_ratio:.2f}x (goal >= 2x)")
    print(f"train step B={a.batch} T={a.length}: entrl {med['entrl_train']:.1f} vs PyTorch eager "
          f"{med['torch_train']:.1f} tok/s -> {train_ratio:.2f}x (goal >= 0.7x)")
    grpo_lines = grpo_table(grpo, a) if a.grpo_steps > 1 else ""
    if grpo_lines:
        _, sft_peak = entrl_train_run("configs/bench/sft_step_smollm2.toml", a)
        grpo_lines += f"| peak RSS, SFT step (GSM8K, batch 8) | {sft_peak:.0f} MB | — | | |\n"
        print(grpo_lines)
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
            + grpo_lines
        )
        with open(ROOT / "docs" / "BENCHMARKS.md", "a") as f:
            f.write(section)
        print("appended to docs/BENCHMARKS.md")


def grpo_table(grpo, a):
    """Markdown rows of the GRPO-step comparison (medians over rounds)."""
    import trl
    m = {side: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for side, runs in grpo.items()}
    e, t = m["entrl"], m["trl"]
    tps = lambda x, secs: x["length"] * a.group / secs
    print(f"GRPO step 1x{a.group}x<={a.new_tokens} (TRL {trl.__version__}): entrl {e['step_s']:.2f} s vs TRL "
          f"{t['step_s']:.2f} s -> {e['step_s'] / t['step_s']:.2f}x wall time (goal <= 0.5x); "
          f"mean lengths {e['length']:.1f} vs {t['length']:.1f}")
    return (
        f"| GRPO step 1 × {a.group} × ≤ {a.new_tokens} vs TRL {trl.__version__} `GRPOTrainer`: seconds | "
        f"{e['step_s']:.2f} s | {t['step_s']:.2f} s | {e['step_s'] / t['step_s']:.2f}× time | ≤ 0.5× |\n"
        f"| GRPO step: completion tokens/s (mean length entrl {e['length']:.1f}, TRL {t['length']:.1f}) | "
        f"{tps(e, e['step_s']):.1f} | {tps(t, t['step_s']):.1f} | {tps(e, e['step_s']) / tps(t, t['step_s']):.2f}× | |\n"
        f"| GRPO update (step less generation and rewards): completion tokens/s | {tps(e, e['update_s']):.1f} | "
        f"{tps(t, t['update_s']):.1f} | {tps(e, e['update_s']) / tps(t, t['update_s']):.2f}× | ≥ 1.0× |\n"
        f"| peak RSS, GRPO step process | {e['peak_mb']:.0f} MB | {t['peak_mb']:.0f} MB | "
        f"{e['peak_mb'] / t['peak_mb']:.2f}× | |\n"
    )


if __name__ == "__main__":
    main()
