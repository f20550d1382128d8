#!/bin/bash
# The GRACE evals for issue 14 at the v2 CPU budget (hidden 128, feed-forward 512: chosen
# on Beauty's validation split, evals/results/rec-tuning/beauty-grace-sweep*.json), one
# model job at a time (flock), the main comparisons first: JSA and dense on Beauty, then
# on Sports, then the ablations without attribute tokens. Rerunnable: training resumes
# from its last epoch's checkpoint and the eval from its stored answers.
# Usage: scripts/grace_queue_v2.sh > grace_queue.log 2>&1   (data from $AISLE_DATA,
# default ../shared/data beside the repository)
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
D=${AISLE_DATA:-../shared/data}
L="flock /tmp/aisle-model.lock"
step() { echo "=== $(date +%T) $*"; "$@"; echo "=== rc $?"; }
for ds in beauty sports; do
  E=".venv/bin/aisle rec eval --data $D --dataset $ds --model grace --threads 2 --out evals/results"
  step $L $E
  step $L $E --attention dense
done
for ds in beauty sports; do
  E=".venv/bin/aisle rec eval --data $D --dataset $ds --model grace --threads 2 --out evals/results"
  step $L $E --attribute-tokens 0
done
echo "=== queue done $(date +%T)"
