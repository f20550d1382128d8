#!/bin/bash
# The LVA-COG outfits eval for issue 16 on the 2-core CPU, in growing slices so that
# every step leaves a complete report (the first N characters of
# evals/outfits_characters.yaml, each with its gender-swapped twin): 5, 10, 20, then all
# 43. One model job at a time (flock). Rerunnable: every answer is stored as it comes, so
# a step resumes where it stopped and a larger slice reuses the smaller one's answers.
# Usage: scripts/outfits_queue_v1.sh > outfits_queue.log 2>&1   (data from $AISLE_DATA,
# default ../shared/data beside the repository)
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
D=${AISLE_DATA:-../shared/data}
M=local:qwen2.5-coder-0.5b
step() { echo "=== $(date +%T) $*"; "$@"; echo "=== rc $?"; }
for n in 5 10 20 43; do
  step flock /tmp/aisle-model.lock .venv/bin/aisle outfits eval --data "$D" --model $M \
    --judge $M --batched --concurrency 4 --limit $n --out evals/results
done
echo "=== queue done $(date +%T)"
