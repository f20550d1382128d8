#!/bin/bash
# The GRACE evals for issue 14 on the 2-core CPU (--budget cpu: up to 60 min of training
# each), one model job at a time (flock). Rerunnable: training resumes from its last
# epoch's checkpoint (the time budget counts the earlier sessions' seconds) and the eval
# from its stored answers.
# Usage: scripts/grace_queue_v1.sh > grace_queue.log 2>&1   (data from $AISLE_DATA,
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
  step $L $E --attribute-tokens 0
done
echo "=== queue done $(date +%T)"
