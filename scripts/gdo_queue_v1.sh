#!/bin/bash
# The GDO eval queue for issue 13, one model job at a time (flock). Rerunnable: a step
# whose method is already in its result file is refused at once by `aisle gdo eval`.
# Usage: scripts/gdo_queue_v1.sh > gdo_queue.log 2>&1   (from anywhere; data from
# $AISLE_DATA, default ../shared/data beside the repository)
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 AISLE_LOCAL_THREADS=${AISLE_LOCAL_THREADS:-2}
A=".venv/bin/aisle gdo eval"
D=${AISLE_DATA:-../shared/data}
R=evals/results/gdo/v1
L="flock /tmp/aisle-model.lock"
Q=local:qwen2.5-coder-0.5b
step() { echo "=== $(date +%T) $*"; "$@"; echo "=== rc $?"; }
step $L .venv/bin/python benchmarks/bench_gdo.py --sections engines
HOS="--task detect --data $D/data-wrangling/error-detection-hospital --limit 300"
step $L $A $HOS --method llm --decide logprob -m $Q --out $R/detect-Hospital-300-qwen2.5-coder-0.5b.json
step $L $A $HOS --method cascade --decide logprob -m $Q --out $R/detect-Hospital-300-qwen2.5-coder-0.5b.json
for dec in json logprob; do
  step $L $A $HOS --method cascade --decide $dec --llm-share 0.25 -m $Q --out $R/detect-Hospital-300-qwen2.5-coder-0.5b.json
  for ds in Beer iTunes-Amazon; do
    step $L $A --task match --data $D/er-magellan/$ds --method cascade --decide $dec --llm-share 0.25 -m $Q --out $R/match-$ds-full-qwen2.5-coder-0.5b.json
  done
done
step $L $A --task impute --data $D/data-wrangling/imputation-buy --method cascade --llm-share 0.25 -m $Q --out $R/impute-Buy-full-qwen2.5-coder-0.5b.json
for ds in Walmart-Amazon Abt-Buy; do
  M="--task match --data $D/er-magellan/$ds --limit 400 -m $Q --out $R/match-$ds-400-qwen2.5-coder-0.5b.json"
  step $L $A $M --method llm --decide logprob
  step $L $A $M --method cascade --decide logprob
  step $L $A $M --method cascade --decide logprob --llm-share 0.25
  step $L $A $M --method llm
  step $L $A $M --method cascade
  step $L $A $M --method cascade --llm-share 0.25
done
for name in smollm2-135m gemma3-270m; do
  for dec in json logprob; do
    M="--task match --data $D/er-magellan/Beer -m local:$name --out $R/match-Beer-full-$name.json"
    step $L $A $M --method llm --decide $dec
    step $L $A $M --method cascade --decide $dec
  done
  step $L $A --task impute --data $D/data-wrangling/imputation-buy -m local:$name --out $R/impute-Buy-full-$name.json --method llm
  step $L $A --task impute --data $D/data-wrangling/imputation-buy -m local:$name --out $R/impute-Buy-full-$name.json --method cascade
  step $L $A $HOS -m local:$name --out $R/detect-Hospital-300-$name.json --method llm
  step $L $A $HOS -m local:$name --out $R/detect-Hospital-300-$name.json --method cascade
done
# The smaller models on the matching datasets the loop above ran on Qwen only.
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
