# `make demo` and `make test` each bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean docs screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/seqctl demo

test: $(STAMP)
	bash scripts/test-services.sh
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_render.py
	$(BIN)/python benchmarks/bench_spam.py
	$(BIN)/python benchmarks/bench_intent.py
	$(BIN)/python benchmarks/bench_reply_guard.py

docs: $(STAMP)
	$(BIN)/python scripts/gen_docs.py > docs/commands.md

# docs/report-desktop.png and docs/report-phone.png: the demo's report in headless Chromium
screenshots: $(STAMP)
	bash scripts/test-services.sh
	SEQCTL_SCREENSHOTS=docs $(BIN)/pytest -q -p no:xdist tests/test_report_browser.py -k renders_offline

clean:
	rm -rf $(VENV) .pytest_cache
