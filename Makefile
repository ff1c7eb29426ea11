# Every target bootstraps its own virtual environment on a fresh machine:
# nothing is needed but python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/qingsuan demo

test: $(STAMP)
	$(BIN)/pytest -n 2 tests

bench: $(STAMP)
	$(BIN)/python bench/bench_ledger.py
	$(BIN)/python bench/bench_hvps.py --liquidity 0.1
	$(BIN)/python bench/bench_gridlock.py
	$(BIN)/python bench/bench_netting.py
	$(BIN)/python bench/bench_clearing.py
	$(BIN)/python bench/bench_gateway.py --runs 3 --duration 20
	$(BIN)/python bench/bench_bulk.py --customers 1000000 --transfers 1000000 --runs 3
	$(BIN)/python bench/bench_world.py --customers 10000,1000000 --events 20000

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/qingsuan

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
