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

.PHONY: install browser ocr demo lint test gate bench clean

install: $(STAMP) browser ocr

# The web page's tests drive Debian's chromium through Playwright (never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium (needs root and apt); browser tests will be skipped"; }

# OCR of images and scanned PDFs runs Debian's Tesseract 5 with its English model (ingest/ocr.py).
ocr:
	@command -v tesseract >/dev/null 2>&1 || { echo "installing Debian's tesseract-ocr for OCR"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null) \
	  || echo "warning: could not install tesseract-ocr (needs root and apt); OCR tests will be skipped"; }

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

# Style (ruff format + ruff check) and layers (import-linter) fail the build like a failing test.
lint: install
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest -q

# Regression gate: re-measure the docs eval set and fail when a metric drops below eval/baseline.json.
# After an intended change: `$(GW) eval gate --baseline eval/baseline.json --eval-set eval/docs.jsonl
# --eval-set eval/handbook.jsonl --update` (the handbook set is then gated too, under "also").
gate: install
	$(GW) eval gate --baseline eval/baseline.json

# Benchmarks need ../shared/data (see docs/benchmarks.md); each prints a table and writes JSON under
# bench/results/ (charts under docs/img/). The figures in docs/benchmarks.md come from these runs.
DATA ?= ../shared/data
MH := --format multihop-rag --corpus $(DATA)/multihop-rag/corpus.json --queries $(DATA)/multihop-rag/queries-dev.json
SF := --corpus $(DATA)/scifact/corpus.jsonl --queries $(DATA)/scifact/queries.jsonl --qrels $(DATA)/scifact/qrels/train.tsv
MH_KB ?= /tmp/groundwork-bench/multihop
bench: install
	@test -d $(DATA)/multihop-rag -a -d $(DATA)/scifact || { echo "make bench needs $(DATA) (see docs/benchmarks.md)"; exit 2; }
	$(GW) eval compare $(SF) --modes bm25,dense,hybrid --json bench/results/scifact-compare.json --plot docs/img/scifact-compare.png
	$(GW) eval compare $(MH) --modes bm25,dense,hybrid --json bench/results/multihop-compare.json --plot docs/img/multihop-compare.png
	$(GW) eval compare $(MH) --config eval/configs/single.toml --config eval/configs/decompose.toml \
	    --config eval/configs/mmr.toml --json bench/results/multihop-pipeline.json --plot docs/img/multihop-pipeline.png
	$(GW) eval answers $(MH) --json bench/results/multihop-answers.json
	$(GW) --kb $(MH_KB) ingest $(DATA)/multihop-rag/corpus.json --text-field body --id-field url \
	    --metadata-fields title,source,category,published_at
	$(PY) bench/multihop_search.py --kb $(MH_KB) --queries $(DATA)/multihop-rag/queries-dev.json
	$(PY) bench/abstention.py --kb $(MH_KB) --queries $(DATA)/multihop-rag/queries-dev.json
	$(PY) bench/ann_recall.py --kb $(MH_KB) --queries-file $(DATA)/multihop-rag/queries-dev.json
	$(PY) bench/throughput.py --data $(DATA)/scifact
	$(PY) bench/grounding.py --data $(DATA)/multihop-rag --queries 200
	$(PY) bench/pii.py

clean:
	rm -rf $(VENV) .groundwork .pytest_cache src/*.egg-info
