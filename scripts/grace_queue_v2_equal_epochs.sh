#!/bin/bash
# JSA against dense attention at an equal budget (issue 14's "within 2% of dense"): in
# grace_queue_v2.sh's runs the early stop ended JSA sooner than dense on both datasets
# (Beauty 22 epochs against 33, Sports 12 against 20) after a high validation sample, so
# those test numbers compare different budgets. Here JSA trains exactly as many epochs as
# its dense run did (--patience equal to --epochs: no early stop; the best epoch on the
# validation split is kept, as in every run). One model job at a time (flock);
# rerunnable: training resumes from its last epoch's checkpoint, the eval from its answers.
# Usage: scripts/grace_queue_v2_equal_epochs.sh > grace_equal.log 2>&1
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
D=${AISLE_DATA:-../shared/data}
L="flock /tmp/aisle-model.lock"
step() { echo "=== $(date +%T) $*"; "$@"; echo "=== rc $?"; }
E=".venv/bin/aisle rec eval --data $D --model grace --threads 2 --out evals/results"
step $L $E --dataset sports --epochs 20 --patience 20  # dense: sports-full-35598u-grace-ee76c52896
step $L $E --dataset beauty --epochs 33 --patience 33  # dense: beauty-full-22363u-grace-448d2b39d5
echo "=== queue done $(date +%T)"
