# One command each: `make demo` colours the bundled example shot, `make test` runs the test suite.
# Both create .venv on first use: CPU torch 2.13.0 first (from the local wheel), then this package.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: setup
	$(BIN)/alacgan colorize examples/shot/lineart --hints examples/shot/hints -o examples/out/color --preset final --overwrite
	@echo "coloured frames: examples/out/color/"

lint: setup
	$(BIN)/ruff check alacgan_batch tests benchmarks examples

test: setup lint
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/quality.py

clean:
	rm -rf $(VENV) examples/out .pytest_cache
