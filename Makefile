# Groundwork: `make demo` runs the main job on the bundled docs, `make test` runs the tests.
# Both install everything first (a .venv in this folder); nothing else needs to be set up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
GW := $(VENV)/bin/groundwork
STAMP := $(VENV)/.installed
DEMO_KB ?= .groundwork/demo
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test bench clean

install: $(STAMP)

# torch is installed first and alone, pinned by constraints.txt, so nothing resolves a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt torch==2.13.0
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	$(GW) --kb $(DEMO_KB) ingest docs/
	@echo
	@for q in "Which file types can Groundwork ingest?" \
	          "How does Groundwork decide when to abstain from answering?" \
	          "How do I filter search results by metadata?"; do \
	    echo "Q: $$q"; $(GW) --kb $(DEMO_KB) ask "$$q" || exit $$?; echo; \
	done

test: install
	$(VENV)/bin/pytest -q

bench: install
	$(PY) bench/multihop_search.py

clean:
	rm -rf $(VENV) .groundwork .pytest_cache src/*.egg-info
