#!/bin/bash
# The rest of the GDO eval queue for issue 13: the smaller registered models on the
# matching datasets scripts/gdo_queue_v1.sh ran on Qwen only. Same conventions.
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 AISLE_LOCAL_THREADS=${AISLE_LOCAL_THREADS:-2}
A=".venv/bin/aisle gdo eval"
D=${AISLE_DATA:-../shared/data}
R=evals/results/gdo/v1
L="flock /tmp/aisle-model.lock"
step() { echo "=== $(date +%T) $*"; "$@"; echo "=== rc $?"; }
for name in smollm2-135m gemma3-270m; do
  for ds in iTunes-Amazon Walmart-Amazon Abt-Buy; do
    if [ "$ds" = iTunes-Amazon ]; then sample=full; lim=""; else sample=400; lim="--limit 400"; fi
    M="--task match --data $D/er-magellan/$ds $lim -m local:$name --out $R/match-$ds-$sample-$name.json"
    for dec in json logprob; do
      step $L $A $M --method llm --decide $dec
      step $L $A $M --method cascade --decide $dec
    done
  done
done
echo "=== queue done $(date +%T)"
