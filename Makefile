# Every target bootstraps its own virtual environment on a fresh machine:
# nothing is needed but python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint venv clean fuzz fonts browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/qingsuan demo

# the solo tests bound a server's answer times under attack: they run alone, after the rest
# (beside another test's processes on 2 CPUs their bounds measure the neighbour)
test: $(STAMP)
	$(BIN)/pytest -n 2 -m "not solo" tests
	$(BIN)/pytest -m solo tests

bench: $(STAMP)
	@echo "make bench: 11 benchmarks, about 25 to 30 minutes on 2 cores (10 for the first 6; the next 2 build a world of 1,000,000 customers, the 9th one of 10,000,000 in 3 GiB; the last 2 drive qingsuan serve over HTTP). Figures: docs/PERFORMANCE.md"
	@echo "[1/11] ledger" && $(BIN)/python bench/bench_ledger.py
	@echo "[2/11] HVPS" && $(BIN)/python bench/bench_hvps.py --liquidity 0.1
	@echo "[3/11] gridlock" && $(BIN)/python bench/bench_gridlock.py
	@echo "[4/11] netting" && $(BIN)/python bench/bench_netting.py
	@echo "[5/11] card clearing" && $(BIN)/python bench/bench_clearing.py
	@echo "[6/11] card gateway (3 runs of 20 s)" && $(BIN)/python bench/bench_gateway.py --runs 3 --duration 20
	@echo "[7/11] bulk path" && $(BIN)/python bench/bench_bulk.py --customers 1000000 --transfers 1000000 --runs 3
	@echo "[8/11] world" && $(BIN)/python bench/bench_world.py --customers 10000,1000000 --events 20000
	@echo "[9/11] memory" && $(BIN)/python bench/bench_memory.py --customers 1000000,10000000
	@echo "[10/11] HTTP transfers (3 runs of 10 s, 64 in flight)" && $(BIN)/python bench/bench_http.py --in-flight 64 --duration 10 --runs 3
	@echo "[11/11] HTTP batch endpoint" && $(BIN)/python bench/bench_http_batch.py --items 100000 --batches 5

fuzz: $(STAMP)
	@echo "make fuzz: 10,000 seeds of deterministic simulation testing, then 1,000,000 ISO 8583 frames and 100,000 ISO 20022 documents at the edges (docs/RELIABILITY.md), about 20 to 30 minutes on one core"
	$(BIN)/qingsuan fuzz --seeds 10000
	$(BIN)/qingsuan fuzz --frames 1000000 --xml 100000

# A font for the Chinese labels of `qingsuan simulate --out` reports (Debian's WenQuanYi
# Micro Hei). Best effort: without root or apt-get it says what to install, and the
# report falls back to English labels.
fonts:
	@if fc-list :lang=zh 2>/dev/null | grep -q .; then echo "a Chinese font is installed"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-wqy-microhei \
	  || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-wqy-microhei); \
	else echo "install a Chinese font (Debian: apt-get install fonts-wqy-microhei) for the report's labels"; fi

# Debian's Chromium for the dashboard's browser test (Playwright drives it; Playwright's own
# browsers are not downloaded)
browser:
	@if [ -x /usr/bin/chromium ]; then echo "chromium is installed: /usr/bin/chromium"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
	  || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium); \
	else echo "install Debian's chromium (apt-get install chromium) for tests/test_http_dashboard_browser.py"; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/qingsuan

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
