#!/usr/bin/env python3
"""Golden renderings of chat templates by Hugging Face transformers' `apply_chat_template`
(tokenize=False), for entrl's Jinja rendering (`trainer/src/data/chat_template.rs`).

Two templates: SmolLM2-135M-Instruct's own (read from the fetched model directory, as
`AutoTokenizer` reads it) and a template written here that exercises what other models' templates
use: whitespace control, `trim_blocks`/`lstrip_blocks`, slicing, namespace, loop variables,
`{% continue %}`, Python string methods, filters, special tokens and `raise_exception`. Each is
rendered for several conversations, with and without a system turn and the generation prompt, and
for entrl's run-file prompt (system turn optional, question + instruction as the user turn).

Writes tests/fixtures/chat_template_golden.json.
Run (after scripts/fetch_assets.sh):  .venv/bin/python scripts/oracle/chat_template_golden.py
"""
import json
import pathlib

import transformers
from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "assets" / "SmolLM2-135M-Instruct"
OUT = ROOT / "tests" / "fixtures" / "chat_template_golden.json"

# Written for this test (not any model's): a default system line, roles checked, repeated user
# turns merged by skipping, Python-style methods.
CUSTOM = """
{%- set ns = namespace(sys='You answer in one line.') -%}
{%- if messages[0]['role'] == 'system' -%}
    {%- set ns.sys = messages[0]['content'].strip() -%}
    {%- set rest = messages[1:] -%}
{%- else -%}
    {%- set rest = messages -%}
{%- endif -%}
{{ bos_token }}[SYS] {{ ns.sys | upper }}
{% for m in rest %}
    {% if m['role'] not in ['user', 'assistant'] %}
        {{ raise_exception('Unknown role: ' + m['role']) }}
    {% endif %}
    {% if m['content'].startswith('#skip') %}{% continue %}{% endif %}
<{{ m['role'] }} n={{ loop.index }}>{{ m['content'] | trim }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}

{% endfor %}
{% if add_generation_prompt %}
<assistant n={{ rest | length + 1 }}>
{%- endif %}
"""

CONVERSATIONS = [
    [{"role": "user", "content": "What is 12 plus 30?"}],
    [{"role": "system", "content": "  You are a careful tutor.  "}, {"role": "user", "content": "Add 7 and 5."}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "2 + 2 = 4\n#### 4"}],
    [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "#skip this turn"},
        {"role": "user", "content": "Second question, with 'quotes' & <tags>"},
    ],
]

INSTRUCTION = "Solve step by step, then give the final answer on its own line as '#### <number>'."


def main():
    tok = AutoTokenizer.from_pretrained(MODEL)
    templates = {"smollm2": None, "custom": CUSTOM}
    cases = []
    for name, tmpl in templates.items():
        for conv in CONVERSATIONS:
            for gen in (False, True):
                text = tok.apply_chat_template(conv, chat_template=tmpl, tokenize=False, add_generation_prompt=gen)
                cases.append({"template": name, "messages": conv, "add_generation_prompt": gen, "text": text})
    # entrl's run-file prompts: [system]? + user(question + "\n" + instruction), then the target
    # (full conversation minus the prompt, trailing whitespace stripped)
    prompts = []
    for name, tmpl in templates.items():
        for system in (None, "You are a math tutor."):
            question, solution = "Tom has 3 apples and buys 4 more. How many?", "3 + 4 = 7\n#### 7"
            msgs = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": f"{question}\n{INSTRUCTION}"}
            ]
            prompt = tok.apply_chat_template(msgs, chat_template=tmpl, tokenize=False, add_generation_prompt=True)
            full = tok.apply_chat_template(
                msgs + [{"role": "assistant", "content": solution}], chat_template=tmpl, tokenize=False
            )
            assert full.startswith(prompt)
            prompts.append({
                "template": name, "system": system, "question": question, "instruction": INSTRUCTION,
                "solution": solution, "prompt": prompt, "target": full[len(prompt):].rstrip(),
            })
    out = {
        "transformers": transformers.__version__,
        "special_tokens": {k: getattr(tok, k) for k in ["bos_token", "eos_token", "unk_token", "pad_token"]},
        "custom_template": CUSTOM,
        "renders": cases,
        "run_prompts": prompts,
    }
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT} ({len(cases)} renders, {len(prompts)} run prompts; transformers {transformers.__version__})")


if __name__ == "__main__":
    main()
