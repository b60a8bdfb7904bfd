#!/usr/bin/env bash
# Runs the training runs listed in a plan file, P at a time, each with its own run directory
# under OUT (default checkpoints/exp). A plan line is: NAME CONFIG [--set key=value ...]
# ('#' lines are comments). Each run's log is OUT/NAME.log; a run whose summary.json exists is
# skipped, so an interrupted plan can be re-run.
#   scripts/experiments/run_plan.sh PLAN [P] [OUT]
# ENTRL (default target/release/entrl) picks the binary; RAYON_NUM_THREADS bounds each run's threads.
set -euo pipefail
plan=$1; par=${2:-1}; out=${3:-checkpoints/exp}
bin=${ENTRL:-target/release/entrl}
mkdir -p "$out"
grep -v '^\s*#' "$plan" | grep -v '^\s*$' | while read -r name config rest; do
  echo "$name|$config|$rest"
done | xargs -P "$par" -I{} bash -c '
  IFS="|" read -r name config rest <<< "{}"
  dir="'"$out"'/$name"
  if [ -f "$dir/summary.json" ]; then echo "skip $name"; exit 0; fi
  start=$(date +%s)
  if '"$bin"' train "$config" --overwrite --set output_dir=\"$dir\" $rest > "'"$out"'/$name.log" 2>&1; then
    echo "done $name in $(( $(date +%s) - start )) s"
  else
    echo "FAILED $name (see '"$out"'/$name.log)"
  fi'
