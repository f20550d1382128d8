#!/bin/bash
# Rebuild the README's GDO eval table (between the gdo-table markers) from every result
# file in evals/results/gdo/v1/: Qwen's files first (in the order below), then the others.
cd "$(dirname "$0")/.."
R=evals/results/gdo/v1
FIRST="match-Beer-full-qwen2.5-coder-0.5b.json match-iTunes-Amazon-full-qwen2.5-coder-0.5b.json match-Walmart-Amazon-400-qwen2.5-coder-0.5b.json match-Abt-Buy-400-qwen2.5-coder-0.5b.json match-Walmart-Amazon-full-baseline.json match-Abt-Buy-full-baseline.json impute-Buy-full-qwen2.5-coder-0.5b.json detect-Hospital-300-qwen2.5-coder-0.5b.json detect-Hospital-1000-qwen2.5-coder-0.5b.json detect-Hospital-full-baseline.json"
REST=$(cd $R && ls *.json | grep -v -F -x -f <(tr ' ' '\n' <<< "$FIRST") | sort -t- -k1,1 -k2 | tr "\n" " ")
FILES="$FIRST $REST"
TABLE=$(cd $R && ../../../../.venv/bin/python -m aisle.evals.gdo_suite $FILES)
PYTHONPATH=scripts python3 - "$FILES" "$TABLE" <<'PY'
import sys
from _readme import replace_block
files, table = sys.argv[1], sys.argv[2]
replace_block("gdo-table", f".venv/bin/python -m aisle.evals.gdo_suite {files} "
              "(in evals/results/gdo/v1/; scripts/gdo_readme_table.sh)",
              table.rstrip("\n") + "\n")
PY
